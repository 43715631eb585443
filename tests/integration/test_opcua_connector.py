"""The OPC-UA connector against python-opcua's own server."""
import os
import time

import pytest

from tests.support.broker import Mosquitto
from tests.support.gateway import GatewayProcess, gateway_can_import, gateway_environment, run_cli, write_config
from tests.support.opcua_server import OpcUaServer, make_certificate
from tests.support.platform import PlatformDouble
from tests.support.waiting import wait_until


def mappings(node_ids):
    return [
        {"deviceNodePattern": "Root\\.Objects\\.MyObject",
         "deviceInfo": {"deviceNameExpressionSource": "constant", "deviceNameExpression": "Demo Device",
                        "deviceProfileExpressionSource": "constant", "deviceProfileExpression": "boiler"},
         "attributes": [{"key": "name", "type": "path", "value": "${Name}"}],
         "timeseries": [{"key": "temperature", "type": "path", "value": "${Temperature}"},
                        {"key": "humidity", "type": "path", "value": "${Humidity}"},
                        {"key": "relay", "type": "path", "value": "${Relay}"}],
         "rpc_methods": [{"method": "multiply", "arguments": [{"type": "integer", "value": 2},
                                                              {"type": "integer", "value": 4}]}],
         "attributes_updates": [{"key": "relay", "type": "path", "value": "Root\\.Objects\\.MyObject\\.Relay"}]},
        {"deviceNodePattern": "Root\\.Objects\\.Meters\\.Meter\\d+",
         "deviceInfo": {"deviceNameExpressionSource": "path", "deviceNameExpression": "${Serial}"},
         "timeseries": [{"key": "level", "type": "path", "value": "${Level}"}]},
        {"deviceNodePattern": node_ids["object"], "deviceNodeSource": "identifier",
         "deviceInfo": {"deviceNameExpressionSource": "constant", "deviceNameExpression": "By Id"},
         "timeseries": [{"key": "t", "type": "identifier", "value": "${%s}" % node_ids["temperature"]}]},
        {"deviceNodePattern": "Root\\.Objects\\.Nothing\\d+",
         "deviceInfo": {"deviceNameExpressionSource": "constant", "deviceNameExpression": "Nobody"}},
    ]


def gateway_config(folder, broker, server, subscriptions=False, security=None):
    node_ids = {"object": server.my_object.nodeid.to_string(), "temperature": server.temperature.nodeid.to_string()}
    config = {"server": {"url": server.url, "timeoutInMillis": 2000, "pollPeriodInMillis": 200,
                         "scanPeriodInMillis": 60000, "enableSubscriptions": subscriptions,
                         "subCheckPeriodInMillis": 100, "reconnect": {"minDelay": 200, "maxDelay": 1000},
                         "security": "None", "identity": {"type": "anonymous"}},
              "mapping": mappings(node_ids)}
    if security:
        config["server"]["security"] = "Basic256Sha256"
        config["server"]["identity"] = {"type": "anonymous", "cert": security[0], "privateKey": security[1]}
    path = write_config(folder, broker.port, connectors=[{"name": "OPC", "type": "opcua",
                                                          "configuration": "opcua.json"}],
                        thingsboard={"statistics": {"enable": True, "statsSendPeriodInSeconds": 1}},
                        files={"opcua.json": config})
    return path


def start_gateway(folder, broker, server, subscriptions=False, security=None):
    return GatewayProcess(gateway_config(folder, broker, server, subscriptions, security))


@pytest.fixture
def world(tmp_path):
    broker = Mosquitto(str(tmp_path), "platform").start()
    platform = PlatformDouble(broker.port)
    server = OpcUaServer()
    gateways = []
    try:
        yield str(tmp_path), broker, platform, server, gateways
    finally:
        for g in gateways:
            g.kill()
        server.stop()
        platform.close()
        broker.stop()




def test_polling_by_path_regex_and_node_id(world):
    folder, broker, platform, server, gateways = world
    gateways.append(start_gateway(folder, broker, server))
    platform.wait_for(lambda m: platform.latest("Demo Device").get("temperature") == 21.5)
    assert platform.latest("Demo Device") == {"temperature": 21.5, "humidity": 40, "relay": False}
    assert platform.wait_topic("v1/gateway/attributes", lambda b: "Demo Device" in b and "connectorName" not in b["Demo Device"]) == \
        {"Demo Device": {"name": "Boiler"}}
    platform.wait_for(lambda m: platform.latest("M-1").get("level") == 10.0 and platform.latest("M-2"))
    platform.wait_for(lambda m: platform.latest("By Id").get("t") == 21.5)
    server.temperature.set_value(30.5)
    platform.wait_for(lambda m: platform.latest("Demo Device").get("temperature") == 30.5)
    # The pattern that matches nothing is reported, by name, in logs and statistics.
    platform.wait_for(lambda m: platform.stat("OPC_failures_pattern:3"))
    assert "deviceNodePattern 'Root\\\\.Objects\\\\.Nothing\\\\d+' matches no node" in gateways[0].output()


def test_subscription_delivers_changes_with_source_timestamps(world):
    folder, broker, platform, server, gateways = world
    gateways.append(start_gateway(folder, broker, server, subscriptions=True))
    platform.wait_for(lambda m: platform.latest("Demo Device").get("temperature") == 21.5)
    before = time.time()
    server.temperature.set_value(25.25)
    platform.wait_for(lambda m: platform.latest("Demo Device").get("temperature") == 25.25)
    stamps = [ts for d, v, ts in platform.telemetry() if d == "Demo Device" and v.get("temperature") == 25.25]
    assert abs(stamps[0] / 1000.0 - before) < 5
    platform.wait_for(lambda m: (platform.stat("OPC_subscription_values") or 0) >= 4)
    time.sleep(1.5)
    assert platform.stat("OPC_polls") == 0    # no polling while subscribed


def test_method_call_get_set_and_attribute_write(world):
    folder, broker, platform, server, gateways = world
    gateways.append(start_gateway(folder, broker, server))
    platform.wait_topic("v1/gateway/connect", lambda b: b["device"] == "Demo Device")
    call = platform.device_rpc("Demo Device", "multiply", [3, 4])
    assert platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == call and "method" not in b["data"]
                               )["data"] == {"result": 12}
    defaults = platform.device_rpc("Demo Device", "multiply", {})
    assert platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == defaults and "method" not in b["data"]
                               )["data"] == {"result": 8}
    setter = platform.device_rpc("Demo Device", "set", {"path": "${Humidity}", "value": "55"})
    platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == setter and b["data"] == {"success": True})
    assert server.humidity.get_value() == 55
    getter = platform.device_rpc("Demo Device", "get", {"path": "${Humidity}"})
    assert platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == getter and "method" not in b["data"]
                               )["data"] == {"value": 55}
    platform.shared_attributes("Demo Device", {"relay": True})
    wait_until(lambda: server.relay.get_value() is True, what="the relay node written")


def test_server_restart_resumes_data_and_subscriptions(world):
    folder, broker, platform, server, gateways = world
    gateways.append(start_gateway(folder, broker, server, subscriptions=True))
    platform.wait_for(lambda m: platform.latest("Demo Device").get("temperature") == 21.5)
    server.stop()
    platform.wait_topic("v1/gateway/disconnect", lambda b: b["device"] == "Demo Device", timeout=20)
    server.start()
    server.temperature.set_value(42.0)
    platform.wait_for(lambda m: platform.latest("Demo Device").get("temperature") == 42.0, timeout=30)
    platform.wait_for(lambda m: (platform.stat("OPC_reconnects") or 0) >= 1)
    code, seconds = gateways[0].terminate()
    assert code == 0 and seconds < 10


def test_close_returns_while_the_server_is_unreachable(world):
    folder, broker, platform, server, gateways = world
    gateways.append(start_gateway(folder, broker, server))
    platform.wait_for(lambda m: platform.latest("Demo Device"))
    server.stop()
    platform.wait_topic("v1/gateway/disconnect", lambda b: b["device"] == "Demo Device", timeout=20)
    code, seconds = gateways[0].terminate()
    assert code == 0 and seconds < 10


def test_basic256sha256_with_certificates(tmp_path):
    pytest.importorskip("cryptography", reason="cryptography is needed to make test certificates")
    if not gateway_can_import("cryptography"):
        pytest.skip("the gateway under test has no cryptography (see test_security_without_cryptography_is_refused)")
    folder = str(tmp_path)
    server_cert = make_certificate(folder, "server")
    client_cert = make_certificate(folder, "gateway")
    broker = Mosquitto(folder, "platform").start()
    platform = PlatformDouble(broker.port)
    server = OpcUaServer(certificate=server_cert[0], private_key=server_cert[1])
    gateway = None
    try:
        gateway = start_gateway(folder, broker, server, security=client_cert)
        platform.wait_for(lambda m: platform.latest("Demo Device").get("temperature") == 21.5, timeout=30)
        assert "connecting without security" not in gateway.output()
    finally:
        if gateway is not None:
            gateway.kill()
        server.stop()
        platform.close()
        broker.stop()


def test_security_without_cryptography_is_refused_in_one_line(tmp_path):
    """python-opcua alone would log a warning and connect without security."""
    pytest.importorskip("cryptography", reason="cryptography is needed to make test certificates")
    folder = str(tmp_path)
    client_cert = make_certificate(folder, "gateway")
    blocker = tmp_path / "no-crypto"
    blocker.mkdir()
    if gateway_can_import("cryptography"):   # hide it from the gateway: a package that fails to import
        (blocker / "cryptography").mkdir()
        (blocker / "cryptography" / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    broker = Mosquitto(folder, "platform").start()
    server = OpcUaServer()
    try:
        path = gateway_config(folder, broker, server, security=client_cert)
        hidden = os.pathsep.join([str(blocker), gateway_environment().get("PYTHONPATH", "")])
        result = run_cli(["check", "--config", path], env={"PYTHONPATH": hidden})
    finally:
        server.stop()
        broker.stop()
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "server.security: Basic256Sha256 needs the Python package cryptography" in lines[0]
