"""The buffered socket paho reads through, and PUBACKs queued as one write
(thingsboard_gateway/mqtt/client.py), against the installed paho."""
import socket
import struct

import paho.mqtt.client as mqtt
import pytest

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
