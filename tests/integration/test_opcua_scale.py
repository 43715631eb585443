"""The OPC-UA connector with more nodes than one request carries (500): a device of
1,200 variables in upstream's pre-3.5 file shape (as its opcua10K.json), by polling and
by subscriptions, against python-opcua's own server."""
import json
import logging

import pytest
from opcua import Server

from tests.support.broker import Mosquitto, free_port, wait_port
from tests.support.clock import Clock
from tests.support.gateway import GatewayProcess, run_cli, write_config
from tests.support.platform import PlatformDouble
from tests.support.recorder import RecordingGateway
from tests.support.waiting import wait_until

NODES = 1200


@pytest.fixture(scope="module")
def big_server():
    port = free_port()
    server = Server()
    server.set_endpoint("opc.tcp://127.0.0.1:%d/big/" % port)
    idx = server.register_namespace("http://tests.big")
    device = server.get_objects_node().add_object(idx, "Device1")
    device.add_variable(idx, "serialNumber", "SN-1")
    tags = [device.add_variable(idx, "Tag%d" % i, float(i)) for i in range(NODES)]
    server.start()
    try:
        assert wait_port(port)
        yield "opc.tcp://127.0.0.1:%d/big/" % port, tags
    finally:
        server.stop()


def old_shape(url, subscriptions):
    """Upstream's pre-3.5 shape: mapping under server, `path`, deviceNamePattern with a
    template, disableSubscriptions, and the 1 ms scanPeriodInMillis of its opcua10K.json."""
    return {"server": {"name": "OPC-UA Default Server", "url": url.replace("opc.tcp://", ""),
                       "timeoutInMillis": 5000, "scanPeriodInMillis": 1, "disableSubscriptions": not subscriptions,
                       "subCheckPeriodInMillis": 100, "showMap": False, "security": "Basic128Rsa15",
                       "identity": {"type": "anonymous"},
                       "mapping": [{"deviceNodePattern": "Root\\.Objects\\.Device1",
                                    "deviceNamePattern": "Device ${Root\\.Objects\\.Device1\\.serialNumber}",
                                    "attributes": [{"key": "serial", "path": "${serialNumber}"}],
                                    "timeseries": [{"key": "Tag%d" % i, "path": "${Tag%d}" % i}
                                                   for i in range(NODES)]}]}}


@pytest.mark.parametrize("subscriptions", [False, True], ids=["polling", "subscriptions"])
def test_an_old_shape_file_with_1200_nodes_end_to_end(tmp_path, big_server, subscriptions):
    url, tags = big_server
    broker = Mosquitto(str(tmp_path), "platform").start()
    platform = PlatformDouble(broker.port)
    gateway = None
    try:
        path = write_config(str(tmp_path), broker.port, files={"opcua.json": old_shape(url, subscriptions)},
                            connectors=[{"name": "OPC", "type": "opcua", "configuration": "opcua.json"}])
        gateway = GatewayProcess(path)
        platform.wait_for(lambda m: len(platform.latest("Device SN-1")) == NODES, timeout=60)
        assert platform.latest("Device SN-1")["Tag1199"] == 1199.0
        assert platform.wait_topic("v1/gateway/attributes", lambda b: "Device SN-1" in b and "connectorName" not in b["Device SN-1"]) == \
            {"Device SN-1": {"serial": "SN-1"}}
        tags[1100].set_value(-5.5)
        platform.wait_for(lambda m: platform.latest("Device SN-1").get("Tag1100") == -5.5)
        assert gateway.terminate(30)[0] == 0
        output = gateway.output()
        assert output.count("pre-3.5 OPC-UA shape, converted on load") == 1, output
        if not subscriptions:
            assert "server.pollPeriodInMillis: 1 ms is below 100 ms; 100 ms is used" in output
        assert "Traceback" not in output and "did not close" not in output
    finally:
        if gateway is not None:
            gateway.kill()
        platform.close()
        broker.stop()


def check(folder, url, opcua_file):
    path = write_config(str(folder), 1883, files={"opcua.json": opcua_file},
                        connectors=[{"name": "OPC", "type": "opcua", "configuration": "opcua.json"}])
    result = run_cli(["check", "--config", path])
    return result.returncode, result.stdout + result.stderr


def test_check_converts_an_old_shape_file_and_refuses_one_without_mapping(tmp_path, big_server):
    url, _ = big_server
    code, text = check(tmp_path / "old", url, old_shape(url, False))
    assert code == 0, text
    assert "converted on load (server.mapping, disableSubscriptions, scanPeriodInMillis as the poll period" in text
    assert "1 mapping(s)" in text
    code, text = check(tmp_path / "empty", url, {"server": {"url": url, "disableSubscriptions": True}})
    assert code != 0
    assert "mapping: no device mapping" in text
    assert "Traceback" not in text


def test_a_poll_longer_than_its_period_is_counted_and_logged_once(big_server, caplog):
    """Every clock reading moves 2 s on, so each poll of 1,200 nodes (three Reads) seems to
    take seconds: each is counted, one line is logged, and polls go on without piling up."""
    from thingsboard_gateway.connectors.opcua.connector import OpcUaConnector
    url, _ = big_server
    config = {"name": "Big", "server": {"url": url, "pollPeriodInMillis": 1000},
              "mapping": old_shape(url, False)["server"]["mapping"]}
    config["mapping"][0]["deviceInfo"] = {"deviceNameExpressionSource": "constant", "deviceNameExpression": "Big"}
    del config["mapping"][0]["deviceNamePattern"]
    gateway = RecordingGateway()
    connector = OpcUaConnector(gateway, config, "opcua")
    connector.clock = Clock(step=2.0)
    caplog.set_level(logging.WARNING)
    connector.open()
    try:
        wait_until(lambda: connector.statistics()["poll_overruns"] >= 3, 60, "three overrunning polls")
    finally:
        connector.close()
    lines = [r.getMessage() for r in caplog.records if "longer than pollPeriodInMillis" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "a poll of 1201 nodes took" in lines[0]  # 1,200 tags and the serial number
    sizes = [len(d.get("attributes") or {}) + sum(len(e["values"]) for e in d.get("telemetry") or [])
             for d in gateway.sent]
    assert sizes[:3] == [500, 500, 201]  # one record per Read of 500 nodes
