"""A small MQTT 3.1.1 server standing in for ThingsBoard where Mosquitto cannot: it
enforces rate limits and the maximum payload like ThingsBoard (a violation closes the
connection and is recorded), answers getSessionLimits, and can withhold PUBACKs.

Real sockets on 127.0.0.1, one thread per connection; only what the gateway uses.
"""
import json
import socket
import ssl
import struct
import threading
import time

from thingsboard_gateway.platform.ratelimit import parse_rate_limits


def _read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _remaining_length(sock):
    multiplier, value = 1, 0
    while True:
        byte = _read_exact(sock, 1)[0]
        value += (byte & 127) * multiplier
        if not byte & 128:
            return value
        multiplier *= 128


def _encode_length(n):
    out = bytearray()
    while True:
        byte = n % 128
        n //= 128
        out.append(byte | (128 if n else 0))
        if not n:
            return bytes(out)


def _string(data, offset):
    length = struct.unpack_from(">H", data, offset)[0]
    return data[offset + 2:offset + 2 + length].decode("utf-8"), offset + 2 + length


class Published(object):
    def __init__(self, at, topic, payload, dup, packet_id, connection):
        self.at, self.topic, self.payload, self.dup = at, topic, payload, dup
        self.packet_id, self.connection = packet_id, connection

    @property
    def body(self):
        return json.loads(self.payload.decode())


class FakePlatform(object):
    """limits: {"messages": "10:1,100:10", "datapoints": "...", "max_payload": n} enforced on
    v1/gateway/* traffic. session_limits: the getSessionLimits answer (None: never answer).
    withhold(published) -> True to hold back that PUBACK until release().

    tokens: the access tokens (user names) it accepts, as ThingsBoard authenticates a
    CONNECT (None: everyone); others get CONNACK 5, "not authorized". provisioning: the
    device profile's {"key", "secret"}: the user name `provision` may then ask for
    credentials on /provision/request (ThingsBoard's device provisioning); what it issues
    is accepted from then on. tls: (certificate, key) to serve TLS with; a client certificate
    provisioned by X509_CERTIFICATE authenticates its CONNECT (as ThingsBoard matches it)."""

    def __init__(self, limits=None, session_limits=None, withhold=None, tokens=None, provisioning=None, tls=None):
        self.tokens = tokens
        self.tls = tls
        self.certificates = []  # PEM of client certificates provisioned (X509_CERTIFICATE)
        self.basic = []  # (client id, user name, password) accepted, issued by MQTT_BASIC provisioning
        self.provisioning = provisioning
        self.provision_requests = []  # every request, parsed
        self.devices = {}  # name -> the request that provisioned it
        self.refused = 0  # CONNECTs refused
        self.limits = limits or {}
        self.session_limits = session_limits
        self.withhold = withhold or (lambda published: False)
        self.published = []  # every PUBLISH received, in order
        self.violations = []
        self.connections = 0
        self.max_unacked = 0
        self._held = []
        self._unacked = 0
        self._lock = threading.RLock()  # wait_for's predicate may read under it
        self._cond = threading.Condition(self._lock)
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(8)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._sockets = []
        self._thread = threading.Thread(target=self._accept, name="fake-platform", daemon=True)
        self._thread.start()

    # -- server ------------------------------------------------------------------------
    def _accept(self):
        while not self._stop.is_set():
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._sockets.append(sock)
            threading.Thread(target=self._serve, args=(sock, self.connections), daemon=True).start()

    def _send(self, sock, packet_type, body):
        try:
            sock.sendall(bytes([packet_type]) + _encode_length(len(body)) + body)
        except OSError:
            pass

    def _secured(self, sock):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*self.tls)
        with self._lock:
            trusted = "".join(self.certificates)
        if trusted:
            context.load_verify_locations(cadata=trusted)
            context.verify_mode = ssl.CERT_OPTIONAL
        return context.wrap_socket(sock, server_side=True)

    def _serve(self, sock, number):
        peer = None
        try:
            if self.tls:
                sock = self._secured(sock)
                peer = sock.getpeercert(binary_form=True)
            while not self._stop.is_set():
                header = _read_exact(sock, 1)[0]
                body = _read_exact(sock, _remaining_length(sock))
                kind = header >> 4
                if kind == 1:      # CONNECT
                    if not self._authenticated(body, peer):
                        with self._lock:
                            self.refused += 1
                        self._send(sock, 0x20, b"\x00\x05")  # not authorized
                        break
                    self._send(sock, 0x20, b"\x00\x00")
                elif kind == 8:    # SUBSCRIBE
                    packet_id = body[:2]
                    offset, granted = 2, bytearray()
                    while offset < len(body):
                        _, offset = _string(body, offset)
                        granted.append(min(body[offset], 1))
                        offset += 1
                    self._send(sock, 0x90, packet_id + bytes(granted))
                elif kind == 3:    # PUBLISH
                    self._publish(sock, number, header, body)
                elif kind == 12:   # PINGREQ
                    self._send(sock, 0xD0, b"")
                elif kind == 14:   # DISCONNECT
                    break
        except (ConnectionError, OSError, ssl.SSLError):
            pass
        finally:
            sock.close()

    def _publish(self, sock, number, header, body):
        qos = (header >> 1) & 3
        topic, offset = _string(body, 0)
        packet_id = None
        if qos:
            packet_id = struct.unpack_from(">H", body, offset)[0]
            offset += 2
        payload = body[offset:]
        published = Published(time.monotonic(), topic, payload, bool(header & 0x08), packet_id, number)
        with self._cond:
            self.published.append(published)
            self._cond.notify_all()
        if topic.startswith("v1/gateway/") and not self._allowed(published):
            sock.close()  # like ThingsBoard: a client over its limits is disconnected
            raise ConnectionError("limit violated")
        if topic.startswith("v1/devices/me/rpc/request/"):
            self._answer_rpc(sock, topic, payload)
        if topic == "/provision/request":
            self._provision(sock, payload)
        if qos:
            ack = (sock, struct.pack(">H", packet_id))
            with self._cond:
                hold = self.withhold(published)
                if hold:
                    self._held.append(ack)
                self._unacked = len(self._held)
                self.max_unacked = max(self.max_unacked, self._unacked + (0 if hold else 1))
            if not hold:
                self._send(sock, 0x40, ack[1])

    def _allowed(self, published):
        reasons = []
        max_payload = self.limits.get("max_payload")
        if max_payload and len(published.payload) > max_payload:
            reasons.append("payload %d > %d bytes" % (len(published.payload), max_payload))
        gateway = [p for p in self.published if p.topic.startswith("v1/gateway/") and not p.dup]
        for count, seconds in parse_rate_limits(self.limits.get("messages") or "0:0,"):
            window = [p for p in gateway if published.at - p.at < seconds]
            if len(window) > count:
                reasons.append("%d messages in %g s > %d" % (len(window), seconds, count))
        for count, seconds in parse_rate_limits(self.limits.get("datapoints") or "0:0,"):
            points = sum(datapoints(p) for p in gateway if published.at - p.at < seconds)
            if points > count:
                reasons.append("%d datapoints in %g s > %d" % (points, seconds, count))
        if reasons:
            self.violations.append((published.topic, reasons))
        return not reasons

    @staticmethod
    def _credentials(body):
        """(client id, user name, password) of a CONNECT."""
        _, offset = _string(body, 0)
        flags = body[offset + 1]
        offset += 4
        client_id, offset = _string(body, offset)
        if flags & 0x04:  # will topic and message
            _, offset = _string(body, offset)
            length = struct.unpack_from(">H", body, offset)[0]
            offset += 2 + length
        username = password = None
        if flags & 0x80:
            username, offset = _string(body, offset)
        if flags & 0x40:
            length = struct.unpack_from(">H", body, offset)[0]
            password = body[offset + 2:offset + 2 + length].decode("utf-8")
        return client_id, username, password

    def _authenticated(self, body, peer=None):
        client_id, username, password = self._credentials(body)
        if self.tokens is None or (username == "provision" and self.provisioning is not None):
            return True
        with self._lock:
            if peer and any(ssl.PEM_cert_to_DER_cert(pem) == peer for pem in self.certificates):
                return True
            if username in self.tokens and not password:
                return True
            return any((c or client_id) == client_id and u == username and (p or None) == (password or None)
                       for c, u, p in self.basic)

    def _provision(self, sock, payload):
        """ThingsBoard's answer to a provision request."""
        try:
            request = json.loads(payload.decode())
        except ValueError:
            request = {}
        with self._lock:
            self.provision_requests.append(request)
            profile = self.provisioning or {}
            name = request.get("deviceName") or "device-%d" % len(self.devices)
            if request.get("provisionDeviceKey") != profile.get("key") or \
                    request.get("provisionDeviceSecret") != profile.get("secret"):
                answer = {"status": "NOT_FOUND", "errorMsg": "Provision data was not found!"}
            elif name in self.devices:
                answer = {"status": "FAILURE", "errorMsg": "Device with name %s already exists!" % name}
            elif request.get("credentialsType") == "X509_CERTIFICATE":
                self.certificates.append(request.get("hash") or "")
                self.devices[name] = request
                answer = {"status": "SUCCESS", "credentialsType": "X509_CERTIFICATE",
                          "credentialsValue": request.get("hash")}
            elif request.get("credentialsType") == "MQTT_BASIC":
                issued = (request.get("clientId"), request.get("username"), request.get("password"))
                self.basic.append(issued)
                self.devices[name] = request
                answer = {"status": "SUCCESS", "credentialsType": "MQTT_BASIC",
                          "credentialsValue": {"clientId": issued[0], "userName": issued[1], "password": issued[2]}}
            else:
                token = request.get("token") or "issued-%08d" % (len(self.devices) * 7919 + 12345)
                if self.tokens is not None:
                    self.tokens.add(token)
                self.devices[name] = request
                answer = {"status": "SUCCESS", "credentialsType": "ACCESS_TOKEN", "credentialsValue": token}
        topic = b"/provision/response"
        self._send(sock, 0x30, struct.pack(">H", len(topic)) + topic + json.dumps(answer).encode())

    def revoke(self, token):
        """The platform deletes the device's credentials: its CONNECTs are refused from now on."""
        with self._lock:
            self.tokens.discard(token)

    def _answer_rpc(self, sock, topic, payload):
        try:
            request = json.loads(payload.decode())
        except ValueError:
            return
        if request.get("method") == "getSessionLimits" and self.session_limits is not None:
            answer_topic = ("v1/devices/me/rpc/response/" + topic.rsplit("/", 1)[1]).encode()
            body = struct.pack(">H", len(answer_topic)) + answer_topic + json.dumps(self.session_limits).encode()
            self._send(sock, 0x30, body)

    # -- test side ---------------------------------------------------------------------
    def release(self):
        """Send the PUBACKs held back so far."""
        with self._cond:
            held, self._held = self._held, []
            self._unacked = 0
        for sock, packet_id in held:
            self._send(sock, 0x40, packet_id)

    def telemetry(self):
        """{(device, key): value} of everything received on v1/gateway/telemetry."""
        out = {}
        with self._lock:
            items = [p for p in self.published if p.topic == "v1/gateway/telemetry"]
        for p in items:
            for device, entries in p.body.items():
                for entry in entries:
                    for key, value in entry["values"].items():
                        out[(device, key)] = value
        return out

    def wait_for(self, predicate, timeout=30.0):
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("fake platform: condition not met in %.0f s (%d publishes, violations %s)"
                                         % (timeout, len(self.published), self.violations[:3]))
                self._cond.wait(min(remaining, 0.2))

    def close(self):
        self._stop.set()
        self._server.close()
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.close()
                except OSError:
                    pass


def datapoints(published):
    if published.topic != "v1/gateway/telemetry":
        return 0
    return sum(len(e.get("values", {})) for entries in published.body.values() for e in entries)
