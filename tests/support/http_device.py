"""A device's HTTP API on a free port for the request connector's tests: it answers
JSON, and can be slow, answer 5xx or garbage, redirect, or require basic auth. It
records every request and whether it came on a reused (kept-alive) connection."""
import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HttpDevice(object):
    def __init__(self, username=None, password=None):
        self.routes = {}     # path -> (status, body bytes or JSON value, delay s)
        self.requests = []   # (method, path, body, connection number)
        self.connections = 0
        self.auth = "Basic " + base64.b64encode(("%s:%s" % (username, password)).encode()).decode() \
            if username else None
        device = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                BaseHTTPRequestHandler.setup(self)
                device.connections += 1
                self.number = device.connections

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                device.requests.append((self.command, self.path, body, self.number))
                if device.auth and self.headers.get("Authorization") != device.auth:
                    status, content, delay = 401, {"error": "auth"}, 0
                else:
                    status, content, delay = device.routes.get(self.path, (404, {"error": "no route"}, 0))
                if delay:
                    time.sleep(delay)
                data = content if isinstance(content, bytes) else json.dumps(content).encode()
                self.send_response(status)
                if status in (301, 302, 307):
                    self.send_header("Location", content.decode() if isinstance(content, bytes) else "/")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            do_GET = do_POST = do_PUT = _any

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client that gave up on a slow answer

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, name="http-device")
        self.thread.start()

    def hits(self, path):
        return [r for r in self.requests if r[1] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
