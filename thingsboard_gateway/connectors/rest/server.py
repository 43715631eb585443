"""The REST connector's HTTP server (http.server, a thread per connection): bounded
connections, a read timeout against slow clients, a body-size limit, TLS handshakes on
the connection's own thread, and no traceback to the client or the log for bad input.

`RestServer(connector, settings)` calls `connector.handle(request)` with a `Request`;
handle returns (status, headers, body object)."""
import json
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Optional, Set, Tuple

log = logging.getLogger(__name__)

Response = Tuple[int, Dict[str, str], Any]

# A request refused before its body was read (413, 411, 400) is answered at once, then
# what the client still sends is read and dropped for at most this long and this much
# (a lingering close): closing with data unread would reset the connection, and a client
# still sending its body would lose the answer with it.
LINGER_SECONDS = 5.0
LINGER_BYTES = 64 * 1024 * 1024


class Request(object):
    """What the connector needs of one HTTP request."""

    def __init__(self, method, path, query, headers, body):
        # type: (str, str, Dict[str, Any], Any, bytes) -> None
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    # The headers and the body go out in two writes: with Nagle's algorithm the body
    # waits for the client's delayed ACK of the headers (40 ms on Linux) on every request.
    disable_nagle_algorithm = True
    server_version = "tb-gateway-rest"
    sys_version = ""

    def setup(self):
        self.timeout = self.server.settings["readTimeoutSec"]  # a slow client's reads time out
        BaseHTTPRequestHandler.setup(self)

    def log_message(self, format, *args):
        log.debug("%s: " + format, self.address_string(), *args)

    def _any(self):
        settings = self.server.settings
        parts = urllib.parse.urlsplit(self.path)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._refuse(411, "a Content-Length is required")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._refuse(400, "bad Content-Length")
            return
        if length > settings["maxBodySize"]:
            self._refuse(413, "body over %d bytes" % settings["maxBodySize"])
            return
        try:
            body = self.rfile.read(length) if length else b""
        except socket.timeout:
            self.server.connector.count("read_timeout", "a client sent its body too slowly; closed")
            self.close_connection = True
            return
        if len(body) < length:
            self.close_connection = True
            return
        query = {k: v[0] if len(v) == 1 else v for k, v in urllib.parse.parse_qs(parts.query).items()}
        status, headers, content = self.server.connector.handle(
            Request(self.command, parts.path, query, self.headers, body))
        self._send(status, headers, content)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    def _refuse(self, status, why):
        # type: (int, str) -> None
        """Answer before the body is read, then close lingering (see LINGER_SECONDS)."""
        self._send(status, {}, {"error": why}, close=True)
        sock = self.connection
        deadline = time.monotonic() + LINGER_SECONDS
        left = LINGER_BYTES
        try:
            sock.shutdown(socket.SHUT_WR)  # the answer is complete: the client may read it now
            while left > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                sock.settimeout(remaining)
                chunk = sock.recv(min(left, 262144))
                if not chunk:
                    break  # the client has read the answer and closed
                left -= len(chunk)
        except (OSError, ValueError):  # reset, timed out (socket.timeout is an OSError), TLS closed
            pass

    def _send(self, status, headers, content, close=False):
        # type: (int, Dict[str, str], Any, bool) -> None
        """The whole response in one write (status line, headers, JSON body)."""
        data = json.dumps(content, separators=(",", ":")).encode("utf-8") if content is not None else b""
        lines = ["HTTP/1.1 %d %s" % (status, self.responses.get(status, ("",))[0]),
                 "Content-Type: application/json", "Content-Length: %d" % len(data)]
        lines.extend("%s: %s" % item for item in headers.items())
        if close:
            lines.append("Connection: close")
            self.close_connection = True
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)
        self.server.connector.responded(status)
        log.debug("%s %s %s -> %d", self.address_string(), self.command, self.path, status)


class RestServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with the bounds above; request threads are joined on close."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, connector, settings):
        # type: (Any, Dict[str, Any]) -> None
        self.connector = connector
        self.settings = settings
        self.context = None  # type: Optional[ssl.SSLContext]
        if settings["SSL"]:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(settings["security"]["cert"], settings["security"]["key"])
        self._slots = threading.BoundedSemaphore(settings["maxConcurrentRequests"])
        self._open = set()  # type: Set[socket.socket]
        self._open_lock = threading.Lock()
        ThreadingHTTPServer.__init__(self, (settings["host"], settings["port"]), _Handler)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            self.connector.count("busy", "%d connections open already: one refused with 503"
                                   % self.settings["maxConcurrentRequests"])
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\n\r\n")
                request.shutdown(socket.SHUT_WR)
                request.recv(65536, socket.MSG_DONTWAIT)  # what the client sent already: closing with it unread resets
            except OSError:
                pass
            self.connector.responded(503)
            self.shutdown_request(request)
            return
        ThreadingHTTPServer.process_request(self, request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            ThreadingHTTPServer.process_request_thread(self, request, client_address)
        finally:
            self._slots.release()

    def finish_request(self, request, client_address):
        request.settimeout(self.settings["readTimeoutSec"])
        if self.context is not None:
            try:
                request = self.context.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError) as e:
                self.connector.count("tls", "TLS handshake with %s failed: %s" % (client_address[0], e))
                return
        with self._open_lock:
            self._open.add(request)
        try:
            self.RequestHandlerClass(request, client_address, self)
        finally:
            with self._open_lock:
                self._open.discard(request)
            if self.context is not None:
                request.close()

    def handle_error(self, request, client_address):
        # a client that vanished mid-request, a broken TLS stream: one counted line, no traceback
        import sys
        error = sys.exc_info()[1]
        self.connector.count("connection", "%s: %s: %s" % (client_address[0], type(error).__name__, error))
        log.debug("request from %s failed", client_address[0], exc_info=True)

    def close_connections(self):
        """Cut every open connection (close() then joins their threads quickly)."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
