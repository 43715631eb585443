"""Device-side acknowledgements: a QoS 1 device message is acknowledged once all its
records are durable, and in the order messages arrived (MQTT-4.6.0-2)."""
import threading
from typing import Dict, Tuple


class AckSequencer(object):
    """Sends PUBACKs in the order the messages arrived (MQTT-4.6.0-2), whatever order
    they become durable in: a message that needed no storage is acknowledged only after
    every earlier one. Thread-safe."""

    def __init__(self, ack):
        self._ack = ack  # ack(mid, qos)
        self._lock = threading.Lock()
        self._next = 0       # sequence number of the next message to arrive
        self._head = 0       # the oldest message not acknowledged yet
        self._done = {}  # type: Dict[int, Tuple[int, int]]  seq -> (mid, qos), ready but waiting for older ones

    def received(self):
        # type: () -> int
        with self._lock:
            seq = self._next
            self._next += 1
            return seq

    def done(self, seq, mid, qos):
        with self._lock:
            self._done[seq] = (mid, qos)
            ready = []
            while self._head in self._done:
                ready.append(self._done.pop(self._head))
                self._head += 1
            # Acknowledge under the lock too, so that two threads releasing consecutive
            # runs cannot overtake each other.
            for mid, qos in ready:
                self._ack(mid, qos)


class Acker(object):
    """Marks one device message done once all its records are stored."""

    __slots__ = ("_sequencer", "_seq", "_mid", "_qos", "_remaining", "_lock")

    def __init__(self, sequencer, seq, mid, qos, parts):
        self._sequencer, self._seq, self._mid, self._qos = sequencer, seq, mid, qos
        self._remaining = parts
        self._lock = threading.Lock()

    def stored(self, ok):
        with self._lock:
            self._remaining -= 1
            done = self._remaining == 0
        if done:
            self._sequencer.done(self._seq, self._mid, self._qos)
