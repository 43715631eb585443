"""The REST connector with real HTTP clients on 127.0.0.1: every status, basic auth, TLS
with a test CA, responses from the platform, outgoing requests, the upstream file."""
import base64
import http.client
import json
import os
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.support import certs
from tests.support.broker import Mosquitto, free_port
from tests.support.gateway import GatewayProcess, write_config
from tests.support.platform import PlatformDouble
from tests.support.recorder import RecordingGateway
from tests.support.waiting import wait_until
from tests.support.upstream import upstream_config


SENSOR = {"type": "json",
          "deviceInfo": {"deviceNameExpressionSource": "request", "deviceNameExpression": "${sensorName}",
                         "deviceProfileExpressionSource": "constant", "deviceProfileExpression": "thermo"},
          "attributes": [{"type": "string", "key": "model", "value": "${sensorModel}"}],
          "timeseries": [{"type": "double", "key": "temperature", "value": "${temp}"}]}


def rest_config(port, **server):
    settings = {"host": "127.0.0.1", "port": str(port), "SSL": False, "maxBodySize": 1000, "readTimeoutSec": 1,
                "maxConcurrentRequests": 8, "storageTimeoutSec": 1, "retryAfterSec": 7}
    settings.update(server)
    return {"name": "REST", "server": settings, "mapping": [
        {"endpoint": "/data", "HTTPMethods": ["POST", "PUT"], "security": {"type": "anonymous"}, "converter": SENSOR},
        {"endpoint": "/secure", "HTTPMethods": ["POST"], "converter": SENSOR,
         "security": {"type": "basic", "username": "user", "password": "s3cret"}},
        {"endpoint": "/ask", "HTTPMethods": ["POST"], "converter": SENSOR,
         "response": {"responseExpected": True, "timeout": 5}}],
        "requestsMapping": {"attributeRequests": [
            {"endpoint": "/attributes", "type": "shared", "HTTPMethods": ["POST"], "timeout": 2,
             "deviceNameExpression": "${deviceName}", "attributeNameExpression": "${attribute}"}]}}


@pytest.fixture
def rest(open_connector):
    from thingsboard_gateway.connectors.rest.connector import RestConnector

    def start(gateway=None, **server):
        port = free_port()
        connector, gateway = open_connector(RestConnector, rest_config(port, **server), "rest",
                                            gateway or RecordingGateway(attributes={"mode": "eco"}))
        return connector, gateway, port
    return start


def call(port, method, path, body=None, headers=None, context=None):
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10) if context \
        else http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    connection.request(method, path, body=data, headers=headers or {})
    response = connection.getresponse()
    content = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), json.loads(content) if content else None


def auth(user, password):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()}


def test_every_status(rest):
    connector, gateway, port = rest()
    good = {"sensorName": "T1", "sensorModel": "X", "temp": 21.5}
    assert call(port, "POST", "/data", good)[0] == 200
    assert gateway.sent[0]["telemetry"][0]["values"] == {"temperature": 21.5}
    assert gateway.sent[0]["deviceType"] == "thermo" and gateway.sent[0]["attributes"] == {"model": "X"}
    status, _, body = call(port, "POST", "/data", b"{not json")
    assert status == 400 and body["error"].startswith("malformed JSON")
    status, _, body = call(port, "POST", "/data", {"temp": 1})
    assert status == 400 and "deviceName" in body["error"]
    assert call(port, "POST", "/nowhere", good)[0] == 404
    status, headers, _ = call(port, "GET", "/data")
    assert status == 405 and headers["Allow"] == "POST, PUT"
    assert call(port, "POST", "/secure", good)[0] == 401
    assert call(port, "POST", "/secure", good, auth("user", "wrong"))[0] == 401
    assert call(port, "POST", "/secure", good, auth("user", "s3cret"))[0] == 200
    assert call(port, "POST", "/data", b"x" * 1001)[0] == 413
    assert call(port, "POST", "/data", good, {"Transfer-Encoding": "chunked"})[0] == 411
    assert len(gateway.sent) == 2
    stats = connector.statistics()
    assert stats["responses_200"] == 2 and stats["responses_401"] == 2 and stats["responses_400"] == 2


@pytest.fixture
def busy_cores():
    """Every core busy with a spinning process, for as long as the test runs."""
    import subprocess
    import sys
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    yield
    for spinner in spinners:
        spinner.kill()
        spinner.wait()


def test_oversized_body_gets_its_413_on_a_busy_machine(rest, busy_cores):
    """Answered from the Content-Length, then the body is read and dropped (a bounded
    lingering close): the client, still sending, reads the 413 instead of a reset."""
    connector, gateway, port = rest()
    statuses = []
    for _ in range(3):
        try:
            statuses.append(call(port, "POST", "/data", b"x" * (3 * 1024 * 1024), {"Content-Type": "text/plain"})[0])
        except (ConnectionError, http.client.HTTPException, socket.timeout) as e:
            statuses.append(type(e).__name__)
    assert statuses == [413, 413, 413]
    assert call(port, "POST", "/data", {"sensorName": "T1", "temp": 1})[0] == 200
    assert len(gateway.sent) == 1


def test_storage_full_is_503_with_retry_after(rest):
    connector, gateway, port = rest(RecordingGateway(store_ok=False))
    status, headers, _ = call(port, "POST", "/data", {"sensorName": "T1", "temp": 1})
    assert status == 503 and headers["Retry-After"] == "7"


def test_slow_client_is_cut_and_others_are_served(rest):
    connector, gateway, port = rest()
    slow = socket.create_connection(("127.0.0.1", port))
    slow.sendall(b"POST /data HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"sens")  # and never the rest
    assert call(port, "POST", "/data", {"sensorName": "T2", "temp": 2})[0] == 200
    slow.settimeout(5)
    assert slow.recv(100) == b""  # closed after readTimeoutSec
    slow.close()


def test_connections_over_the_bound_are_refused_until_one_is_free(rest):
    connector, gateway, port = rest(maxConcurrentRequests=2, readTimeoutSec=3)
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    wait_until(lambda: len(connector.server._open) == 2, what="both idle connections taken")
    try:  # answered 503 at once; when the rest of the request comes after the close, a reset instead
        assert call(port, "POST", "/data", {"sensorName": "T3", "temp": 3})[0] == 503
    except (ConnectionResetError, BrokenPipeError):
        pass
    wait_until(lambda: connector.statistics().get("failures_busy") == 1)
    assert not gateway.sent
    for s in idle:
        s.close()

    def served():
        try:
            return call(port, "POST", "/data", {"sensorName": "T3", "temp": 3})[0] == 200
        except OSError:  # refused while the idle connections' slots are being freed
            return False
    wait_until(served)


def test_tls_with_a_test_ca(rest, tmp_path):
    if not certs.have_openssl():
        pytest.skip("openssl is not installed: no test certificates")
    ca = certs.make_ca(str(tmp_path))
    cert, key = certs.make_cert(str(tmp_path), ca, "server")
    connector, gateway, port = rest(SSL=True, security={"cert": cert, "key": key})
    context = ssl.create_default_context(cafile=ca[0])
    assert call(port, "POST", "/data", {"sensorName": "T4", "temp": 4}, context=context)[0] == 200
    with pytest.raises((ssl.SSLError, OSError)):
        call(port, "POST", "/data", {"sensorName": "T4", "temp": 4}, context=ssl.create_default_context())
    plain = socket.create_connection(("127.0.0.1", port))  # plain HTTP on the TLS port: cut, no traceback
    plain.sendall(b"POST /data HTTP/1.1\r\n\r\n")
    plain.settimeout(5)
    try:
        assert not plain.recv(100).startswith(b"HTTP")
    except ConnectionResetError:
        pass
    plain.close()
    wait_until(lambda: connector.statistics().get("failures_tls") == 2)
    assert call(port, "POST", "/data", {"sensorName": "T4", "temp": 5}, context=context)[0] == 200


def test_response_from_the_platform_and_attribute_requests(rest):
    connector, gateway, port = rest()
    result = {}
    thread = threading.Thread(target=lambda: result.update(answer=call(port, "POST", "/ask",
                                                                        {"sensorName": "T5", "temp": 5})))
    thread.start()
    wait_until(lambda: gateway.sent)
    connector.server_side_rpc_handler({"device": "T5", "data": {"id": 3, "method": "reply",
                                                                "params": {"setpoint": 20}}})
    thread.join(10)
    assert result["answer"][0] == 200 and result["answer"][2] == {"setpoint": 20}
    assert gateway.replies == [("T5", 3, {"success": True})]
    status, _, body = call(port, "POST", "/attributes", {"deviceName": "T5", "attribute": "mode"})
    assert status == 200 and body == {"device": "T5", "value": "eco"}


class DeviceApi(object):
    """A device's own HTTP API that records what the gateway sends to it."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                received.append((self.command, self.path, self.rfile.read(length)))
                body = json.dumps({"echo": self.path}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            do_GET = do_POST = _any

            def log_message(self, *args):
                pass
        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def test_upstream_file_unchanged_end_to_end(tmp_path, broker, platform, gateways):
    """rest.json as upstream ships it (port and the device API's URLs pointed at free
    ports): posts become telemetry, an RPC and an attribute update become HTTP requests."""
    upstream = upstream_config("rest.json")
    port, api = free_port(), DeviceApi()
    upstream["server"]["port"] = str(port)
    for entry in upstream["requestsMapping"]["attributeUpdates"] + upstream["requestsMapping"]["serverSideRpc"]:
        entry["requestUrlExpression"] = entry["requestUrlExpression"].replace("127.0.0.1:5001",
                                                                              "127.0.0.1:%d" % api.port)
    path = write_config(str(tmp_path), broker.port, files={"rest.json": upstream},
                        connectors=[{"name": "REST Connector", "type": "rest", "configuration": "rest.json"}],
                        storage={"type": "file", "data_folder_path": str(tmp_path / "data")})
    gateway = gateways(path)
    try:
        wait_until(lambda: _open(port), timeout=20)
        status, _, _ = call(port, "POST", "/my_devices", {"sensorName": "SN-1", "sensorType": "thermo",
                                                          "sensorModel": "M", "certificateNumber": "C",
                                                          "temp": 20.5, "hum": 40})
        assert status == 200
        platform.wait_for(lambda m: platform.latest("SN-1").get("temperature") == 20.5)
        status, _, body = call(port, "POST", "/my_devices", {"sensorName": "SN-\u0001", "sensorType": "thermo",
                                                             "temp": 1, "hum": 1})
        assert status == 400 and body["error"].startswith("invalid data: "), body  # ThingsBoard could not take it
        assert call(port, "POST", "/anon2", b"\x41\xa4\x00\x00")[0] == 200  # the custom converter: float 20.5
        platform.wait_for(lambda m: platform.latest("SuperAnonDevice").get("Totaliser") == 20.5)
        request = platform.device_rpc("SN-1", "echo", {"x": 1})
        reply = platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == request and "method" not in b["data"])
        assert reply["data"] == {"result": {"echo": "/SN-1"}}
        platform.shared_attributes("SN-1", {"color": "red"})
        wait_until(lambda: any(r[0] == "POST" and b'"color":"red"' in r[2] for r in api.received))
        statuses = []

        def client(number):  # keep-alive: one connection, 100 posts
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for i in range(100):
                connection.request("POST", "/my_devices", body=json.dumps(
                    {"sensorName": "C%d" % number, "sensorType": "t", "sensorModel": "M", "certificateNumber": "C",
                     "temp": i, "hum": 1}), headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                statuses.append(response.status)
            connection.close()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert statuses == [200] * 800

        def delivered():
            return {(d, v["temperature"]) for d, v, _ in platform.telemetry() if d.startswith("C")}
        platform.wait_for(lambda m: len(delivered()) == 800, timeout=30)
        assert "Traceback" not in gateway.output()
    finally:
        api.close()


def _open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_full_storage_answers_503_and_nothing_answered_200_is_lost(tmp_path):
    """A real gateway whose platform is down and whose file storage holds ~20 records: posts
    are answered 200 until storage is full, then 503 with Retry-After; once the platform is
    up, a sender that retries gets 200 again, and every post answered 200 arrives."""
    platform_port, port = free_port(), free_port()
    rest = {"server": {"host": "127.0.0.1", "port": port, "storageTimeoutSec": 1, "retryAfterSec": 3},
            "mapping": [{"endpoint": "/data", "converter": SENSOR}]}
    path = write_config(str(tmp_path), platform_port, files={"rest.json": rest},
                        connectors=[{"name": "REST", "type": "rest", "configuration": "rest.json"}],
                        storage={"type": "file", "data_folder_path": str(tmp_path / "data"),
                                 "max_records_per_file": 10, "max_file_count": 2, "overflow": "block",
                                 "put_timeout_ms": 500})
    gateway = GatewayProcess(path)
    broker, platform = None, None
    accepted, refused = [], None
    try:
        wait_until(lambda: _open(port), timeout=20)
        for seq in range(80):
            status, headers, _ = call(port, "POST", "/data", {"sensorName": "Tank", "temp": seq, "sensorModel": "m"})
            if status == 503:
                refused = (seq, headers)
                break
            assert status == 200
            accepted.append(seq)
        assert refused is not None and len(accepted) >= 10, accepted
        assert refused[1]["Retry-After"] == "3"
        broker = Mosquitto(str(tmp_path), "platform", port=platform_port).start()
        platform = PlatformDouble(broker.port)

        def retried():  # the sender retries what was refused until it is accepted
            return call(port, "POST", "/data", {"sensorName": "Tank", "temp": refused[0], "sensorModel": "m"})[0] == 200
        wait_until(retried, timeout=30)
        accepted.append(refused[0])
        platform.wait_for(lambda m: set(accepted) <= {v.get("temperature") for d, v, _ in platform.telemetry()
                                                       if d == "Tank"}, timeout=30)
        assert "Traceback" not in gateway.output()
    finally:
        gateway.kill()
        if platform is not None:
            platform.close()
        if broker is not None:
            broker.stop()
