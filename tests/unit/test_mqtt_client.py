"""The buffered socket paho reads through, and PUBACKs queued as one write
(thingsboard_gateway/mqtt/client.py), against the installed paho."""
import select
import socket
import struct

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings, strategies as st

from thingsboard_gateway.mqtt.client import CHUNK, BufferedSocket, Client


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def test_small_reads_are_served_from_one_buffer(pair):
    a, b = pair
    a.sendall(b"\x30\x05hello\x30\x03abc")
    sock = BufferedSocket(b)
    assert sock.recv(1) == b"\x30"
    assert sock.pending() == 11      # the rest waits in the buffer, not in the kernel
    assert sock.recv(1) == b"\x05"
    assert sock.recv(5) == b"hello"
    assert sock.recv(10) == b"\x30\x03abc"  # what is buffered, fewer bytes than asked
    assert sock.pending() == 0
    b.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(1)                  # nothing buffered: the socket's own answer


def test_a_read_larger_than_the_buffer_goes_to_the_socket(pair):
    a, b = pair
    big = bytes(range(256)) * (CHUNK // 128)
    a.sendall(b"\x01" + big)
    sock = BufferedSocket(b)
    assert sock.recv(1) == b"\x01"
    got = sock.recv(len(big))
    while len(got) < len(big):
        got += sock.recv(len(big) - len(got))
    assert got == big


def test_the_end_of_the_stream_reads_empty(pair):
    a, b = pair
    a.sendall(b"xy")
    a.close()
    sock = BufferedSocket(b)
    assert sock.recv(1) == b"x"
    assert sock.recv(1) == b"y"
    assert sock.recv(1) == b""


def test_everything_else_is_the_sockets(pair):
    a, b = pair
    sock = BufferedSocket(b)
    assert sock.fileno() == b.fileno()
    assert sock.getsockname() == b.getsockname()
    sock.send(b"ping")
    assert a.recv(4) == b"ping"


def queued(client):
    return [(p["command"], bytes(p["packet"])) for p in client._out_packet]


def test_pubacks_of_many_messages_are_one_write_in_their_order():
    client = Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t", manual_ack=True)
    client.ack_many([(1, 1), (2, 1), (3, 0), (4, 2), (5, 1)])
    puback = struct.Struct("!BBH").pack
    assert queued(client) == [(0x40, puback(0x40, 2, 1) + puback(0x40, 2, 2)),
                              (0x70, puback(0x70, 2, 4)),   # QoS 2: paho's PUBCOMP, between the others
                              (0x40, puback(0x40, 2, 5))]


def test_a_client_that_acknowledges_by_itself_queues_nothing():
    client = Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t")
    client.ack_many([(1, 1), (2, 1)])
    assert queued(client) == []


def test_a_whole_buffered_packet_is_taken_in_one_piece(pair):
    a, b = pair
    body = b"t" * 200                       # remaining length 200: two length bytes
    a.sendall(b"\x30\x05hello" + b"\x32\xc8\x01" + body + b"\x30\x09part")
    sock = BufferedSocket(b)
    assert sock.packet() is None            # nothing buffered yet
    assert sock.recv(1) == b"\x30"          # paho's first read fills the buffer
    sock._pos = 0
    assert sock.packet() == (0x30, 5, b"hello")
    assert sock.packet() == (0x32, 200, body)
    assert sock.packet() is None            # 4 of its 9 bytes are here: paho reads it its own way
    assert sock.recv(100) == b"\x30\x09part"


def test_a_length_of_more_than_four_bytes_is_left_to_paho(pair):
    a, b = pair
    a.sendall(b"\x30\xff\xff\xff\xff\x01xyz")
    sock = BufferedSocket(b)
    sock.recv(1)
    sock._pos = 0
    assert sock.packet() is None


def _publish_packet(topic, payload, qos, dup, retain, mid):
    body = struct.pack("!H", len(topic)) + topic + (struct.pack("!H", mid) if qos else b"") + payload
    length, encoded = len(body), b""
    while True:
        byte, length = length % 128, length // 128
        encoded += bytes([byte | (128 if length else 0)])
        if not length:
            break
    return bytes([0x30 | (dup << 3) | (qos << 1) | retain]) + encoded + body


def _readable(client):
    sock = client._sock
    return (sock.pending() if hasattr(sock, "pending") else 0) or select.select([sock], [], [], 0)[0]


def _read_all(client, writer, chunks):
    """Feed the chunks to the client's socket one by one, with read events after each
    (what paho's loop makes of select() and pending()) until nothing is left to read."""
    got = []
    client.on_message = lambda c, u, m: got.append((m.topic, m.payload, m.qos, m.dup, m.retain, m.mid))
    for chunk in chunks:
        writer.sendall(chunk)
        while _readable(client):
            assert client.loop_read() == mqtt.MQTT_ERR_SUCCESS
    return got


# printable topics without wildcards (paho decodes the topic to text), short payloads and
# long ones (longer than the read buffer, lengths of 1 to 3 bytes)
packets = st.lists(st.tuples(st.text("abcXYZ/-_ 019", min_size=1, max_size=300).map(str.encode),
                             st.one_of(st.binary(max_size=200),
                                       st.integers(16000, 70000).map(lambda n: bytes(i % 251 for i in range(n)))),
                             st.integers(0, 1), st.integers(0, 1), st.integers(0, 1), st.integers(1, 65535)),
                   min_size=1, max_size=30)


@settings(max_examples=40, deadline=None)
@given(packets, st.lists(st.integers(1, 5000), min_size=1, max_size=50), st.booleans())
def test_what_paho_itself_would_deliver_whatever_the_chunks(items, cuts, pings):
    stream = b""
    for topic, payload, qos, dup, retain, mid in items:
        stream += _publish_packet(topic, payload, qos, dup, retain, mid)
        if pings:
            stream += b"\xd0\x00"  # a PINGRESP between them
    chunks, pos = [], 0
    while pos < len(stream):
        for cut in cuts:
            chunks.append(stream[pos:pos + cut])
            pos += cut
    results = []
    for kind, wrap in ((mqtt.Client, lambda s: s), (Client, BufferedSocket)):
        a, b = socket.socketpair()
        try:
            b.setblocking(False)
            client = kind(mqtt.CallbackAPIVersion.VERSION2, client_id="t", manual_ack=True)
            client._sock = wrap(b)
            results.append(_read_all(client, a, [c for c in chunks if c]))
        finally:
            a.close()
            b.close()
    assert len(results[0]) == len(items)
    assert results[1] == results[0]


def test_a_broken_packet_after_whole_ones_ends_the_connection_once(pair):
    a, b = pair
    b.setblocking(False)
    client = Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t", manual_ack=True)
    client._sock = BufferedSocket(b)
    got, disconnects = [], []
    client.on_message = lambda c, u, m: got.append(m.payload)
    client.on_disconnect = lambda *args: disconnects.append(args)
    # whole PUBLISHes (the first through paho's read, the next from the buffer), then one whose
    # remaining length runs past 4 bytes (paho's protocol error)
    a.sendall(_publish_packet(b"t", b"one", 0, 0, 0, 1) + _publish_packet(b"t", b"two", 0, 0, 0, 2) +
              b"\x30\xff\xff\xff\xff\x01")
    assert client.loop_read() != mqtt.MQTT_ERR_SUCCESS
    assert got == [b"one", b"two"]
    assert len(disconnects) == 1
    assert client._sock is None
