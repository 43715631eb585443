"""One device connection of the socket connector, and its outbox: what the socket did not
take at once waits here (at most OUTBOX bytes) for the connection's own thread, so the
thread that asked for a write (the platform connection's) never blocks on a device."""
import collections
import logging
import socket
import threading
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

log = logging.getLogger(__name__)

OUTBOX = 65536  # bytes waiting for a connection whose device does not read, at most

Done = Callable[[Optional[str]], None]  # called with None once sent, else with the reason


class Peer(object):
    """One TCP connection (or, for UDP, the last address a device sent from)."""

    def __init__(self, sock, address, device):
        # type: (Optional[socket.socket], Tuple[str, int], Dict[str, Any]) -> None
        self.sock = sock
        self.address = address
        self.device = device
        self.lock = threading.Lock()
        self.outbox = collections.deque()  # type: Deque[List[Any]]  [bytes left, done]
        self.queued = 0
        self.closed = False

    def put(self, data, done):
        # type: (bytes, Done) -> Optional[str]
        """Queue `data` and send what the socket takes now; the reason when refused."""
        with self.lock:
            if self.closed:
                return "the connection is closed"
            if self.queued and self.queued + len(data) > OUTBOX:
                return "the device is not reading: %d bytes wait already" % self.queued
            self.outbox.append([memoryview(data), done])
            self.queued += len(data)
            sent = self._send_queued()
        _finish(sent, None)
        return None

    def flush(self):
        """On the connection's thread, when its socket takes data again."""
        with self.lock:
            sent = self._send_queued()
        _finish(sent, None)

    def close(self, reason):
        # type: (str) -> None
        """Fail whatever still waits (the connection ended)."""
        with self.lock:
            self.closed = True
            left = [item[1] for item in self.outbox]
            self.outbox.clear()
            self.queued = 0
        _finish(left, reason)

    def _send_queued(self):
        # type: () -> List[Done]
        sent = []  # type: List[Done]
        while self.outbox:
            item = self.outbox[0]
            try:
                n = self.sock.send(item[0])
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break  # the connection's thread sees the error on its next receive and closes
            self.queued -= n
            if n < len(item[0]):
                item[0] = item[0][n:]
                break
            self.outbox.popleft()
            sent.append(item[1])
        return sent


def _finish(callbacks, reason):
    # type: (List[Done], Optional[str]) -> None
    for done in callbacks:
        try:
            done(reason)
        except Exception:  # a reply that fails must not end the thread that sent
            log.exception("socket: a write's callback failed")
