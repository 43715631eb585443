"""A TCP proxy between the gateway and the platform's broker that can make the link
misbehave as middleboxes and platform transports do, one MQTT packet at a time:

- `swallow()`: every packet, in both directions, is dropped while every connection stays
  open (new ones are accepted, and what they send is dropped too): a PUBLISH never gets
  its PUBACK, a PINGREQ never its PINGRESP, a CONNECT never its CONNACK. `restore()` ends
  it: established connections forward again from the next packet on (what was dropped is
  gone, as if the transport had lost it); a connection made during the hole stays a dead
  end (its CONNECT never reached the broker) until its client closes it.
- `cut()`: every connection is closed and new ones are refused until `restore()` (an
  outage the client notices at once).

Real sockets on 127.0.0.1, two threads per connection. Used by tests and benchmarks.
"""
import socket
import threading

from tests.support.fake_platform import _encode_length, _read_exact, _remaining_length

PASS, SWALLOW, CUT = "pass", "swallow", "cut"


def read_packet(sock):
    # type: (socket.socket) -> bytes
    """One whole MQTT packet (fixed header, length, body); ConnectionError when closed."""
    header = _read_exact(sock, 1)
    length = _remaining_length(sock)
    return header + _encode_length(length) + (_read_exact(sock, length) if length else b"")


class _Link(object):
    def __init__(self, downstream, upstream, dead):
        self.downstream = downstream
        self.upstream = upstream
        self.dead = dead  # made during a hole: its packets never reach the broker

    def close(self):
        for sock in (self.downstream, self.upstream):
            if sock is None:
                continue
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class MqttProxy(object):
    """Listens on 127.0.0.1:`port` and forwards to 127.0.0.1:`target_port`."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.mode = PASS
        self.swallowed = 0  # packets dropped
        self.connections = 0
        self._links = []
        self._lock = threading.Lock()
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(16)
        self.port = self._server.getsockname()[1]
        self._closed = False
        self._threads = []
        self._start(self._accept, "proxy-accept")

    def _start(self, target, name, *args):
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def swallow(self):
        self.mode = SWALLOW

    def cut(self):
        with self._lock:
            self.mode = CUT
            links, self._links = self._links, []
        for link in links:
            link.close()

    def restore(self):
        self.mode = PASS

    def _accept(self):
        while not self._closed:
            try:
                downstream, _ = self._server.accept()
            except OSError:
                return
            if self.mode == CUT:
                downstream.close()
                continue
            dead = self.mode == SWALLOW
            upstream = None
            if not dead:
                try:
                    upstream = socket.create_connection(("127.0.0.1", self.target_port), 5)
                    upstream.settimeout(None)
                except OSError:
                    downstream.close()
                    continue
            link = _Link(downstream, upstream, dead)
            with self._lock:
                self._links.append(link)
                self.connections += 1
            self._start(self._pump, "proxy-up", link, downstream, upstream)
            if upstream is not None:
                self._start(self._pump, "proxy-down", link, upstream, downstream)

    def _pump(self, link, source, target):
        try:
            while True:
                packet = read_packet(source)
                if link.dead or self.mode != PASS:
                    self.swallowed += 1
                    continue
                target.sendall(packet)
        except (ConnectionError, OSError):
            pass
        finally:
            link.close()
            with self._lock:
                if link in self._links:
                    self._links.remove(link)

    def close(self):
        self._closed = True
        self._server.close()
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            link.close()
        for thread in self._threads:
            thread.join(2)
