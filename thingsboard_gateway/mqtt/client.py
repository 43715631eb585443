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
- A whole packet waiting in the buffer is handed to paho's `_packet_read` in one piece
  (paho then skips its own byte-wise reading).
- A PUBLISH of QoS 0 or 1 on MQTT 3.1/3.1.1 is parsed here with slices instead of
  paho's formatted struct unpacking, and goes straight to `on_message`, without paho's
  per-message Condition (MQTTMessageInfo: `info` is None on received messages, which
  nothing reads), while no topic callbacks, `on_log` or paho logger are set; MQTT 5,
  QoS 2 and anything malformed go through paho's own `_handle_publish`.
- `ack_many` queues the PUBACKs of many messages as one write: one wake-up of paho's
  thread and one send().

The overridden `_create_socket`, `loop_read`, `_packet_read`, `_handle_publish` and
`message_callback_add`, and `_packet_queue` used by `ack_many`, are paho 2.1's;
tests/unit/test_mqtt_client.py and tests/integration/test_mqtt_client.py check them
against the installed paho.
"""
import struct
import time
from typing import Any, Dict, Iterable, Optional, Tuple

import paho.mqtt.client as mqtt

CHUNK = 65536
# Whole buffered packets handled per read event before paho's loop writes and checks its
# keepalive again (at about 150 bytes a device message, 64 KiB holds some 400).
READ_ROUNDS = 1000
PUBACK = 0x40
_PUBACK = struct.Struct("!BBH").pack  # type, remaining length 2, message id
_new_message = object.__new__  # an MQTTMessage without running its __init__ (see _handle_publish)
_clock = time.monotonic  # paho's message timestamps


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

    def packet(self):
        # type: () -> Optional[Tuple[int, int, bytes]]
        """(first byte, remaining length, the rest) of the next packet when all of it is
        buffered and its length well formed; None otherwise (paho reads it its own way)."""
        buf, pos = self._buf, self._pos
        end = len(buf)
        i = pos + 1
        length, shift = 0, 0
        while True:
            if i >= end or shift > 21:  # not all here, or more than 4 length bytes
                return None
            byte = buf[i]
            i += 1
            length |= (byte & 127) << shift
            if byte < 128:
                break
            shift += 7
        if i + length > end:
            return None
        self._pos = i + length
        return buf[pos], length, buf[i:i + length]

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


def _whole_packet(whole):
    # type: (Tuple[int, int, Any]) -> Dict[str, Any]
    """paho's state of a packet read in full: (first byte, remaining length, the rest)."""
    return {"command": whole[0], "have_remaining": 1, "remaining_count": [], "remaining_mult": 1,
            "remaining_length": whole[1], "packet": whole[2], "to_process": 0, "pos": 0}


def _idle_packet():
    # type: () -> Dict[str, Any]
    """paho's state before a packet's first byte."""
    return {"command": 0, "have_remaining": 0, "remaining_count": [], "remaining_mult": 1, "remaining_length": 0,
            "packet": bytearray(b""), "to_process": 0, "pos": 0}


class Client(mqtt.Client):
    """paho's Client, reading through a buffer, with `ack_many`."""

    _filtered = False  # message_callback_add was used: paho dispatches every PUBLISH

    def message_callback_add(self, sub, callback):
        self._filtered = True
        mqtt.Client.message_callback_add(self, sub, callback)

    def _create_socket(self):
        sock = mqtt.Client._create_socket(self)
        if self._transport == "websockets":  # paho's own wrapper reads frames
            return sock
        return BufferedSocket(sock)

    def loop_read(self, max_packets=1):
        # type: (int) -> Any
        rc = mqtt.Client.loop_read(self, max_packets)
        sock = self._sock
        if type(sock) is not BufferedSocket:
            return rc
        rounds = READ_ROUNDS
        handled = failed = False
        while rc == mqtt.MQTT_ERR_SUCCESS and rounds and sock is self._sock and sock.buffered():
            rounds -= 1
            whole = sock.packet() if self._in_packet["command"] == 0 else None
            if whole is None:  # begun, or not all here: paho reads it its own way (and handles its failure)
                rc = mqtt.Client.loop_read(self, max_packets)
                continue
            self._in_packet = _whole_packet(whole)  # what paho's handlers read
            handled = True
            rc = self._packet_handle()
            self._in_packet = _idle_packet()  # as paho's _packet_read leaves things after a packet
            failed = rc > 0
        if handled:
            with self._msgtime_mutex:
                self._last_msg_in = _clock()
        if failed:  # as paho's loop_read does with a failed packet (once: not after its own)
            return self._loop_rc_handle(rc)
        return rc

    def _packet_read(self):
        sock = self._sock
        if type(sock) is BufferedSocket and self._in_packet["command"] == 0:
            whole = sock.packet()
            if whole is not None:  # as paho leaves it once it has read a packet by itself
                self._in_packet = _whole_packet(whole)
        return mqtt.Client._packet_read(self)

    def _handle_publish(self):
        header = self._in_packet["command"]
        qos = (header & 0x06) >> 1
        packet = self._in_packet["packet"]
        if qos == 2 or self._protocol == mqtt.MQTTv5 or self._filtered or self._logger is not None \
                or self.on_log is not None or len(packet) < 3:
            return mqtt.Client._handle_publish(self)
        end = 2 + ((packet[0] << 8) | packet[1])
        if end == 2 or len(packet) < end + 2 * qos:  # no topic, or cut short: paho's error
            return mqtt.Client._handle_publish(self)
        message = _new_message(mqtt.MQTTMessage)
        message._topic = bytes(packet[2:end])
        message.qos, message.dup, message.retain = qos, bool(header & 0x08), bool(header & 0x01)
        message.mid = 0
        if qos:
            message.mid = (packet[end] << 8) | packet[end + 1]
            end += 2
        message.payload = bytes(packet[end:])
        message.timestamp = _clock()
        message.state, message.info, message.properties = mqtt.mqtt_ms_invalid, None, None
        on_message = self.on_message
        if on_message is not None:
            with self._in_callback_mutex:
                try:
                    on_message(self, self._userdata, message)
                except Exception as err:
                    self._easy_log(mqtt.MQTT_LOG_ERR, "Caught exception in on_message: %s", err)
                    if not self.suppress_exceptions:
                        raise
        if qos == 1 and not self._manual_ack:
            return self._send_puback(message.mid)
        return mqtt.MQTT_ERR_SUCCESS

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
