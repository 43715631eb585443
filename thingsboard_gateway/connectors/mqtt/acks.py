"""Device-side acknowledgements: a QoS 1 device message is acknowledged once all its
records are durable, and in the order messages arrived (MQTT-4.6.0-2)."""
import itertools
import threading
from typing import Dict, List, Tuple

from thingsboard_gateway.runtime.together import after


class AckSequencer(object):
    """Sends PUBACKs in the order the messages arrived (MQTT-4.6.0-2), whatever order
    they become durable in: a message that needed no storage is acknowledged only after
    every earlier one. Thread-safe.

    ack(acks) sends [(mid, qos)] in that order. `received` (paho's thread, per message)
    takes no lock: next() of a count is atomic under the GIL. `done` takes the state lock
    only to collect what is ready, and sends it at the end of the storage writer's group of
    callbacks (runtime/together.py: one write for the group's PUBACKs), or at once when
    called elsewhere. The sending is ordered by a second lock, so paho's thread never waits
    for a batch of PUBACKs that the storage writer is sending (it did, and the two threads
    took turns at a lock 800 times a second at a tenth of a core)."""

    def __init__(self, ack):
        self._ack = ack  # ack([(mid, qos)])
        self._lock = threading.Lock()  # _head, _done and _ready
        self._sending = threading.Lock()  # runs go out in the order they were collected
        self._counter = itertools.count()  # sequence numbers of arriving messages
        self._head = 0       # the oldest message not acknowledged yet
        self._done = {}  # type: Dict[int, Tuple[int, int]]  seq -> (mid, qos), ready but waiting for older ones
        self._ready = []  # type: List[Tuple[int, int]]  (mid, qos) in order, not sent yet

    def received(self):
        # type: () -> int
        return next(self._counter)

    def done(self, seq, mid, qos):
        with self._lock:
            self._done[seq] = (mid, qos)
            done, head, ready = self._done, self._head, self._ready
            while head in done:
                ready.append(done.pop(head))
                head += 1
            self._head = head
        after(self._send_ready)  # (bound methods of one object compare equal: once per group)

    def _send_ready(self):
        with self._sending:
            with self._lock:
                ready, self._ready = self._ready, []
            if ready:
                self._ack(ready)


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
