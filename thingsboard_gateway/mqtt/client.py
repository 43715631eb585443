"""paho's Client with fewer system calls per message (paho-mqtt pinned at 2.1.0).

paho reads a packet with three or more recv() calls (its first byte, each byte of its
remaining length, the rest) and selects once per packet on a connection that has nothing
of its own in flight (a device broker's); and every PUBACK a gateway sends wakes paho's
thread and goes out in a send() of its own. Each of those calls lets the other threads
take the interpreter, and at a tenth of a core on Python 3.7 the handing back and forth
cost more than the calls (a relay of 8,000 device messages made 142,000 system calls,
79,000 of them the interpreter lock's futex). So:

- The socket paho reads from is wrapped in a read buffer (`BufferedSocket`): one recv()
  of up to 64 KiB serves the small reads of many packets. `pending()` tells paho's loop
  that bytes wait in it (the way paho already asks an SSL socket), so it does not block
  in select() while they do, and `loop_read` goes on while they do.
- `ack_many` queues the PUBACKs of many messages as one write: one wake-up of paho's
  thread and one send().

What paho does with the packets is unchanged: its own parsing, callbacks and state.
The overridden `_create_socket` and `loop_read`, and `_packet_queue` used by `ack_many`,
are paho 2.1's; tests/unit/test_mqtt_client.py checks them against the installed paho.
"""
import struct
from typing import Any, Iterable

import paho.mqtt.client as mqtt

CHUNK = 65536
# Whole buffered packets handled per read event before paho's loop writes and checks its
# keepalive again (at about 150 bytes a device message, 64 KiB holds some 400).
READ_ROUNDS = 1000
PUBACK = 0x40
_PUBACK = struct.Struct("!BBH").pack  # type, remaining length 2, message id


class BufferedSocket(object):
    """A connected socket (plain or TLS) whose reads go through a buffer; everything
    else is the socket's. Used by paho's network thread only."""

    __slots__ = ("_sock", "_buf", "_pos")

    def __init__(self, sock):
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, size):
        # type: (int) -> bytes
        buf, pos = self._buf, self._pos
        if pos < len(buf):  # served from the buffer (possibly fewer than size bytes)
            end = pos + size
            self._pos = end
            return buf[pos:end]
        data = self._sock.recv(size if size > CHUNK else CHUNK)  # BlockingIOError and the like pass
        if len(data) <= size:
            return data
        self._buf, self._pos = data, size
        return data[:size]

    def buffered(self):
        # type: () -> int
        return len(self._buf) - self._pos if self._pos < len(self._buf) else 0

    def pending(self):
        # type: () -> int
        """Bytes readable without waiting: buffered here, and inside TLS."""
        inner = getattr(self._sock, "pending", None)
        return self.buffered() + (inner() if inner is not None else 0)

    def send(self, data):
        return self._sock.send(data)

    def fileno(self):
        return self._sock.fileno()

    def setblocking(self, flag):
        self._sock.setblocking(flag)

    def close(self):
        self._buf, self._pos = b"", 0
        self._sock.close()

    def __getattr__(self, name):
        return getattr(self._sock, name)


class Client(mqtt.Client):
    """paho's Client, reading through a buffer, with `ack_many`."""

    def _create_socket(self):
        sock = mqtt.Client._create_socket(self)
        if self._transport == "websockets":  # paho's own wrapper reads frames
            return sock
        return BufferedSocket(sock)

    def loop_read(self, max_packets=1):
        # type: (int) -> Any
        rc = mqtt.Client.loop_read(self, max_packets)
        rounds = READ_ROUNDS
        while rc == mqtt.MQTT_ERR_SUCCESS and rounds:
            sock = self._sock
            if not isinstance(sock, BufferedSocket) or not sock.buffered():
                break
            rc = mqtt.Client.loop_read(self, max_packets)  # each round takes at least one buffered byte
            rounds -= 1
        return rc

    def ack_many(self, acks):
        # type: (Iterable[Any]) -> None
        """Acknowledge received messages, in order: acks is [(mid, qos)]. The QoS 1 ones
        next to each other go as one write; QoS 2 (PUBCOMP) through paho's ack(). Like
        ack(), only for a client made with manual_ack=True (paho acknowledges the others)."""
        if not self._manual_ack:
            return
        run = []
        for mid, qos in acks:
            if qos == 1:
                run.append(_PUBACK(PUBACK, 2, mid))
            elif qos == 2:
                if run:
                    self._packet_queue(PUBACK, b"".join(run), 0, 0)
                    run = []
                self.ack(mid, qos)
        if run:
            self._packet_queue(PUBACK, b"".join(run), 0, 0)
