"""The socket connector against real TCP and UDP clients on 127.0.0.1."""
import socket
import time

import pytest

from tests.support.broker import free_port
from tests.support.gateway import write_config
from tests.support.recorder import RecordingGateway
from tests.support.waiting import wait_until
from tests.support.upstream import upstream_config



def device(name, address, **extra):
    entry = {"address": address, "deviceName": name, "deviceType": "sensor", "encoding": "utf-8",
             "telemetry": [{"key": "temp", "type": "double", "byteFrom": 0, "byteTo": 4}],
             "attributes": [{"key": "tag", "byteFrom": 5, "byteTo": -1}],
             "attributeRequests": [{"type": "shared", "requestExpression": "${[0:3]==atr}",
                                    "attributeNameExpression": "[3:]"}],
             "attributeUpdates": [{"attributeOnThingsBoard": "sharedName", "encoding": "utf-8"}],
             "serverSideRpc": [{"methodRPC": "set", "withResponse": True, "encoding": "utf-8"}]}
    entry.update(extra)
    return entry


@pytest.fixture
def connector_for(open_connector):
    from thingsboard_gateway.connectors.socket.connector import SocketConnector

    def make(kind="TCP", devices=None, **socket_extra):
        port = free_port()
        settings = {"address": "127.0.0.1", "type": kind, "port": port, "bufferSize": 1024}
        settings.update(socket_extra)
        config = {"name": "Socket", "socket": settings, "devices": devices or [device("Any", "*:*")]}
        connector, gateway = open_connector(SocketConnector, config, "socket",
                                            RecordingGateway(attributes={"sharedName": "blue"}))
        return connector, gateway, port
    return make


def temps(gateway, name="Any"):
    return [d["telemetry"][0]["values"]["temp"] for d in gateway.sent if d["deviceName"] == name and d["telemetry"]]


def test_tcp_messages_attribute_request_update_and_rpc(connector_for):
    connector, gateway, port = connector_for(delimiter="\n")
    client = socket.create_connection(("127.0.0.1", port))
    client.settimeout(5)
    client.sendall(b"21.5 kitchen\n22.0 kitchen\nxx.x bad\n")
    wait_until(lambda: temps(gateway) == [21.5, 22.0])
    wait_until(lambda: connector.statistics().get("failures_message:Any") == 1)
    client.sendall(b"atrsharedName\n")
    assert client.recv(100) == b"blue"
    connector.on_attributes_update({"device": "Any", "data": {"sharedName": "red"}})
    assert client.recv(100) == b"red"
    connector.server_side_rpc_handler({"device": "Any", "data": {"id": 7, "method": "set", "params": {"on": 1}}})
    assert client.recv(100) == b'{"on":1}'
    assert gateway.replies == [("Any", 7, {"success": True})]
    client.close()


def test_udp_datagrams_and_address_filters(connector_for):
    devices = [device("Other", "10.0.0.1:*"), device("Local", "127.0.0.1:*")]
    connector, gateway, port = connector_for("UDP", devices)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(5)
    for i in range(50):
        client.sendto(b"%04.1f dgram" % (i % 10), ("127.0.0.1", port))
    wait_until(lambda: len(temps(gateway, "Local")) == 50)
    assert not temps(gateway, "Other")
    client.sendto(b"atrsharedName", ("127.0.0.1", port))
    assert client.recvfrom(100)[0] == b"blue"
    client.close()


def test_flooding_silent_and_half_closed_clients_do_not_stall_others(connector_for):
    connector, gateway, port = connector_for(delimiter="\n", maxConnections=4, idleTimeoutSec=2,
                                             maxMessageSize=64)
    half = socket.create_connection(("127.0.0.1", port))
    half.sendall(b"10.0 half\n")
    half.shutdown(socket.SHUT_WR)
    flood = socket.create_connection(("127.0.0.1", port))
    flood.sendall(b"z" * 200000)  # one endless line: skipped, never buffered whole
    good = socket.create_connection(("127.0.0.1", port))
    good.sendall(b"30.5 good\n")
    wait_until(lambda: 30.5 in temps(gateway) and 10.0 in temps(gateway))
    wait_until(lambda: connector.statistics()["connections_open"] == 2)  # the half-closed one is gone
    silent = socket.create_connection(("127.0.0.1", port))
    extra = socket.create_connection(("127.0.0.1", port))
    refused = socket.create_connection(("127.0.0.1", port))  # the fifth: over maxConnections
    refused.settimeout(5)
    assert refused.recv(10) == b""
    assert connector.statistics()["connections_refused"] == 1
    silent.settimeout(10)
    assert silent.recv(10) == b""  # closed by the gateway after idleTimeoutSec
    assert connector.statistics()["connections_idle_closed"] >= 1
    assert connector.statistics()["failures_overlong"] >= 1
    later = socket.create_connection(("127.0.0.1", port))  # room again once the idle ones are closed
    later.sendall(b"31.5 later\n")
    wait_until(lambda: 31.5 in temps(gateway))
    for s in (flood, half, good, refused, silent, extra, later):
        s.close()
    wait_until(lambda: connector.statistics()["connections_open"] == 0, timeout=10)


def test_upstream_file_unchanged_end_to_end(tmp_path, broker, platform, gateways):
    upstream = upstream_config("socket.json")
    port = free_port()
    upstream["socket"]["port"] = port
    platform.attributes.update({"Device Example": {"sharedName": "blue"}})
    path = write_config(str(tmp_path), broker.port, files={"socket.json": upstream},
                        connectors=[{"name": "TCP Connector", "type": "socket", "configuration": "socket.json"}])
    gateway = gateways(path)
    client = _wait_connectable(port)
    client.settimeout(10)
    client.sendall(b"42")
    platform.wait_for(lambda m: platform.latest("Device Example").get("temp") == "42")
    client.sendall(b"atrsharedName")
    assert client.recv(100) == b"blue"
    request = platform.device_rpc("Device Example", "rpcMethod1", "hello")
    assert client.recv(100) == b"hello"
    platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == request and b["data"] == {"success": True})
    platform.shared_attributes("Device Example", {"sharedName": "red"})
    assert client.recv(100) == "red".encode("utf-16")
    assert "Traceback" not in gateway.output()
    client.close()


def test_closing_while_connections_arrive_ends_no_thread_with_an_error(monkeypatch):
    """close() cuts connections whose threads may not have begun yet: they end quietly."""
    import threading
    from thingsboard_gateway.connectors.socket.connector import SocketConnector
    errors = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    for _ in range(100):
        port = free_port()
        connector = SocketConnector(RecordingGateway(), {"name": "S", "socket": {"type": "TCP", "address": "127.0.0.1",
                                                                                 "port": port},
                                                         "devices": [device("Any", "*:*")]}, "socket")
        connector.open()
        wait_until(lambda: connector.is_connected(), 5, "listening")
        clients = [socket.create_connection(("127.0.0.1", port), 2) for _ in range(5)]
        connector.close()
        for client in clients:
            client.close()
    assert errors == []


def _wait_connectable(port, timeout=20.0, bind=None):
    """A client connected to the gateway's listener once it listens (from `bind`, with a
    small receive window, when given)."""
    def attempt():
        client = socket.socket()
        if bind is not None:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            client.bind(bind)
        try:
            client.connect(("127.0.0.1", port))
            return client
        except OSError:
            client.close()
            return None
    return wait_until(attempt, timeout, "the gateway listening on %d" % port, interval=0.1)


def test_a_device_that_stops_reading_stalls_nothing_else(tmp_path, relay_peers, gateways):
    """A TCP device whose window is full gets a large RPC; ThingsBoard's next messages (an
    RPC to another device) and the MQTT connector's data flow on while it stays unanswered;
    when the device goes away its RPC gets an error reply (nothing is left unanswered)."""
    port, stuck_port, good_port = free_port(), free_port(), free_port()
    socket_file = {"name": "TCP", "socket": {"type": "TCP", "address": "127.0.0.1", "port": port},
                   "devices": [device("Stuck", "127.0.0.1:%d" % stuck_port), device("Good", "127.0.0.1:%d" % good_port)]}
    mqtt_file = {"broker": {"name": "Devices", "host": "127.0.0.1", "port": relay_peers.devices_broker.port,
                            "clientId": "gw-stall", "security": {"type": "anonymous"}},
                 "mapping": [{"topicFilter": "sensor/+/data", "converter": {
                     "type": "json", "deviceNameJsonExpression": "${name}",
                     "timeseries": [{"type": "integer", "key": "n", "value": "${n}"}]}}]}
    path = write_config(str(tmp_path), relay_peers.platform_broker.port,
                        files={"socket.json": socket_file, "mqtt.json": mqtt_file},
                        connectors=[{"name": "TCP", "type": "socket", "configuration": "socket.json"},
                                    {"name": "MQTT", "type": "mqtt", "configuration": "mqtt.json"}])
    platform, devices = relay_peers.platform, relay_peers.devices
    gateway = gateways(path)
    stuck = _wait_connectable(port, bind=("127.0.0.1", stuck_port))
    good = _wait_connectable(port, bind=("127.0.0.1", good_port))
    good.settimeout(10)
    stuck.sendall(b"11.0 stuck")
    good.sendall(b"12.0 good")
    platform.wait_for(lambda m: platform.latest("Stuck").get("temp") == 11.0 and platform.latest("Good").get("temp"))
    devices.publish("sensor/M1/data", {"name": "M1", "n": 1})
    platform.wait_for(lambda m: platform.latest("M1").get("n") == 1)

    def replies(request_id):
        return [b for _, t, b in platform.messages if t == "v1/gateway/rpc" and b.get("id") == request_id]

    big = platform.device_rpc("Stuck", "set", "x" * (8 << 20))  # far more than the device's window takes
    platform.shared_attributes("Stuck", {"sharedName": "refused: the first write still waits"})
    quick = platform.device_rpc("Good", "set", "hello")
    assert good.recv(100) == b"hello"
    platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == quick and b["data"] == {"success": True})
    devices.publish("sensor/M1/data", {"name": "M1", "n": 2})
    platform.wait_for(lambda m: platform.latest("M1").get("n") == 2)
    assert replies(big) == []  # still waiting for the device to read, and blocking nobody
    stuck.close()
    answer = platform.wait_for(lambda m: replies(big))
    assert "error" in answer[0]["data"], answer
    good.close()
    assert "Traceback" not in gateway.output()
