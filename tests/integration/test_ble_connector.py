"""The BLE connector against the bluepy double (no adapter here): reads, notifications,
writes, scans, out-of-range and hung peripherals, released helpers; and upstream's
ble.json in a gateway process."""
import importlib
import json
import os
import sys
import time

import pytest

from tests.support.gateway import run_cli, write_config
from tests.support.waiting import wait_until
from tests.support.upstream import upstream_config

FAKE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "support", "fake_bluepy")
TEMP, NAME, LED = "226caa55-6476-4566-7562-66734470666d", "00002a00-0000-1000-8000-00805f9b34fb", "2a57"


@pytest.fixture
def btle(monkeypatch):
    """The double as `bluepy.btle`, with a fresh world."""
    monkeypatch.syspath_prepend(FAKE)
    for name in ("bluepy", "bluepy.btle"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    module = importlib.import_module("bluepy.btle")
    assert module.__file__.startswith(FAKE)
    module.WORLD = module.World()
    yield module
    for name in ("bluepy", "bluepy.btle"):
        sys.modules.pop(name, None)


def sensor(name, mac, **extra):
    device = {"name": name, "MACAddress": mac, "pollPeriod": 100, "timeout": 1000, "connectRetry": 2,
              "connectRetryInSeconds": 0.1, "waitAfterConnectRetries": 0.5,
              "telemetry": [{"key": "temperature", "method": "notify", "characteristicUUID": TEMP,
                             "valueExpression": "[2]"}],
              "attributes": [{"key": "name", "method": "read", "characteristicUUID": NAME,
                              "valueExpression": "[0:2]cm [2:]A"}],
              "attributeUpdates": [{"attributeOnThingsBoard": "led", "characteristicUUID": LED}],
              "serverSideRpc": [{"methodRPC": "getName", "withResponse": True, "characteristicUUID": NAME,
                                 "methodProcessing": "read"},
                                {"methodRPC": "setLed", "withResponse": True, "characteristicUUID": LED,
                                 "methodProcessing": "write"},
                                {"methodRPC": "scan", "withResponse": True, "methodProcessing": "scan"}]}
    device.update(extra)
    return device


@pytest.fixture
def connector_for(btle, open_connector):
    from thingsboard_gateway.connectors.ble.connector import BleConnector
    made = []

    def make(devices):
        made.append(open_connector(BleConnector, {"name": "BLE", "devices": devices, "scanner": {"timeout": 100}},
                                   "ble")[0])
        return made[-1], made[-1].gateway
    yield make
    for connector in made:
        connector.close()
    assert btle.WORLD.live_helpers() == 0  # every bluepy-helper ended, whatever happened


def add(btle, mac, temp=21):
    return btle.WORLD.add(mac, {TEMP: bytes([1, 2, temp]), NAME: bytes([1, 2, 3, 4]), LED: b"\x00"})


def telemetry(gateway, name, key="temperature"):
    return [d["telemetry"][0]["values"][key] for d in gateway.sent if d["deviceName"] == name and d["telemetry"]]


def test_reads_notifications_rpc_and_attribute_writes(btle, connector_for):
    device = add(btle, "AA:BB:CC:00:00:01")
    connector, gateway = connector_for([sensor("S1", "aa:bb:cc:00:00:01")])
    wait_until(lambda: "S1" in gateway.devices)
    wait_until(lambda: any(d["attributes"].get("name") == "12cm 34A" for d in gateway.sent))
    for value in (22, 23):
        device.queue.append((TEMP, bytes([0, 0, value])))
    wait_until(lambda: telemetry(gateway, "S1") == [22, 23])
    connector.server_side_rpc_handler({"device": "S1", "data": {"id": 1, "method": "getName"}})
    connector.server_side_rpc_handler({"device": "S1", "data": {"id": 2, "method": "setLed", "params": [1, 255]}})
    connector.server_side_rpc_handler({"device": "S1", "data": {"id": 3, "method": "scan"}})
    connector.on_attributes_update({"device": "S1", "data": {"led": "on"}})
    wait_until(lambda: len(gateway.replies) == 3)
    replies = {r[1]: r[2] for r in gateway.replies}
    assert replies[1] == {"result": "\x01\x02\x03\x04", "hex": "01020304"}
    assert replies[2] == {"success": True}
    assert [e["address"] for e in replies[3]["result"]] == ["AA:BB:CC:00:00:01"]
    wait_until(lambda: len(btle.WORLD.writes) == 2)
    led = "00002a57-0000-1000-8000-00805f9b34fb"
    assert btle.WORLD.writes == [("AA:BB:CC:00:00:01", led, b"\x01\xff", True),
                                 ("AA:BB:CC:00:00:01", led, b"on", True)]


def test_out_of_range_and_hung_peripherals_do_not_hold_the_others(btle, connector_for):
    add(btle, "AA:BB:CC:00:00:01")
    hung = add(btle, "AA:BB:CC:00:00:02")
    hung.hang = "read"
    connector, gateway = connector_for([sensor("Good", "AA:BB:CC:00:00:01"),
                                        sensor("Hung", "AA:BB:CC:00:00:02", timeout=300),
                                        sensor("Away", "AA:BB:CC:00:00:03")])
    start = time.monotonic()
    wait_until(lambda: sum(1 for d in gateway.sent if d["deviceName"] == "Good") >= 10)
    elapsed = time.monotonic() - start
    stats = connector.statistics()
    assert stats.get("failures_connect:Away", 0) >= 1
    assert stats.get("failures_connection:Hung", 0) >= 1  # its read was cut at its timeout
    # 10 polls of 100 ms with a 300 ms hang now and then (its retries back off): well under 10 s
    assert elapsed < 8, elapsed
    assert connector.sessions[0].watchdog.fired >= 1


def test_disconnect_is_survived_with_backoff(btle, connector_for):
    device = add(btle, "AA:BB:CC:00:00:01")
    connector, gateway = connector_for([sensor("S1", "AA:BB:CC:00:00:01")])
    wait_until(lambda: "S1" in gateway.devices)
    device.queue.append(("disconnect", b""))
    wait_until(lambda: connector.statistics().get("failures_connection:S1") == 1)
    device.queue.append((TEMP, bytes([0, 0, 30])))
    wait_until(lambda: telemetry(gateway, "S1") == [30])  # connected again and subscribed again
    assert btle.WORLD.live_helpers() == 1


def test_missing_bluepy_disables_the_connector_in_one_line(tmp_path, broker, gateways):
    from thingsboard_gateway.connectors.ble.connector import INSTALL
    upstream = upstream_config("ble.json")
    path = write_config(str(tmp_path), broker.port, files={"ble.json": upstream},
                        connectors=[{"name": "BLE Connector", "type": "ble", "configuration": "ble.json"}])
    hidden = os.path.join(os.path.dirname(FAKE), "no_bluepy")
    check = run_cli(["check", "--config", path], env={"PYTHONPATH": hidden})
    assert check.returncode == 0 and (check.stdout + check.stderr).count(INSTALL) == 1, check.stdout + check.stderr
    gateway = gateways(path, env={"PYTHONPATH": hidden})
    wait_until(lambda: "disabled" in gateway.output(), timeout=20)
    out = gateway.output()
    lines = [line for line in out.splitlines() if "bluepy is not installed" in line]
    assert len(lines) == 1 and INSTALL in lines[0] and "Traceback" not in out, out


def test_upstream_file_unchanged_end_to_end(tmp_path, broker, platform, gateways):
    """ble.json as upstream ships it, in a gateway process whose bluepy is the double."""
    writes = str(tmp_path / "writes.jsonl")
    world = {"devices": {"4C:65:A8:DF:85:C0": {
        "characteristics": {TEMP: "141e17", "2A00": "0102030405"},
        "notify": {TEMP: {"period": 0.2, "values": ["141e17", "141e18"]}}}}, "writes": writes}
    script = tmp_path / "world.json"
    script.write_text(json.dumps(world))
    upstream = upstream_config("ble.json")
    path = write_config(str(tmp_path), broker.port, files={"ble.json": upstream},
                        connectors=[{"name": "BLE Connector", "type": "ble", "configuration": "ble.json"}])
    gateway = gateways(path, env={"PYTHONPATH": FAKE, "TB_GW_FAKE_BLUEPY": str(script)})
    name = "Temperature and humidity sensor"
    platform.wait_for(lambda m: platform.latest(name).get("temperature") in (23, 24), timeout=20)
    assert platform.latest(name).get("humidity") == 20
    request = platform.device_rpc(name, "rpcMethod2", "hi")
    platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == request and b["data"] == {"success": True})
    with open(writes) as f:
        assert json.loads(f.readline())[2] == "6869"
    assert "Traceback" not in gateway.output()


def test_close_cuts_a_hung_call_at_once(btle, connector_for):
    hung = add(btle, "AA:BB:CC:00:00:09")
    hung.hang = "read"
    connector, gateway = connector_for([sensor("Hung", "AA:BB:CC:00:00:09", timeout=60000)])
    wait_until(lambda: connector.sessions[0].watchdog.armed is not None and "Hung" in gateway.devices)
    wait_until(lambda: hung.hanging == "read", what="the read hanging")
    start = time.monotonic()
    connector.close()
    assert time.monotonic() - start < 3
    assert btle.WORLD.live_helpers() == 0


def test_custom_converter_from_the_extensions_folder(btle, connector_for, monkeypatch):
    monkeypatch.setenv("TB_GW_EXTENSIONS_DIR", os.path.join(os.path.dirname(FAKE), "..", "extensions"))
    add(btle, "AA:BB:CC:00:00:05")
    connector, gateway = connector_for([sensor("Summed", "AA:BB:CC:00:00:05", converter="SumBleConverter")])
    wait_until(lambda: any(d["deviceType"] == "summed" for d in gateway.sent))
    assert next(d for d in gateway.sent if d["deviceType"] == "summed")["telemetry"][0]["values"] == {"byteSum": 10}
