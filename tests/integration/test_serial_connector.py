"""The serial connector against a device played by the test on a socat pty pair."""
import os
import shutil
import threading

import pytest

from tests.support.gateway import write_config
from tests.support.waiting import wait_until
from tests.support.upstream import upstream_config

pytestmark = pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed: no pty pairs")



def meter(name, port, **extra):
    device = {"name": name, "type": "meter", "port": port, "baudrate": 9600,
              "telemetry": [{"key": "humidity", "type": "float", "untilDelimiter": "\r"}],
              "attributes": [{"key": "serial", "type": "string", "fromDelimiter": "SN=", "toByte": -1}],
              "attributeUpdates": [{"attributeOnPlatform": "mode", "stringToDevice": "mode=${mode}\n"}],
              "serverSideRpc": [{"method": "getValue", "type": "int", "withResponse": True,
                                 "stringToDevice": "get ${params}\n", "responseType": "float",
                                 "responseUntilDelimiter": "\r", "responseTimeoutSec": 2},
                                {"method": "silent", "withResponse": True, "responseTimeoutSec": 0.5}],
              "frameTimeoutMs": 300, "maxFrameLength": 64}
    device.update(extra)
    return device


@pytest.fixture
def lines():
    made = []

    def make():
        from tests.support.serial_line import SerialLine
        made.append(SerialLine())
        return made[-1]
    yield make
    for line in made:
        line.close()


@pytest.fixture
def connector_for(open_connector):
    from thingsboard_gateway.connectors.serial.connector import SerialConnector
    return lambda devices: open_connector(SerialConnector, {"name": "Serial", "devices": devices}, "serial")


def humidities(gateway, name):
    return [d["telemetry"][0]["values"]["humidity"] for d in gateway.sent
            if d["deviceName"] == name and d["telemetry"]]


def test_lines_garbage_partial_and_overlong_frames(lines, connector_for):
    line = lines()
    connector, gateway = connector_for([meter("M1", line.gateway_port)])
    wait_until(lambda: "M1" in gateway.devices)
    line.send(b"45.5\r\n")
    line.send(b"\xff\xfe garbage\r\n" + b"x" * 200 + b"\n")  # not a number; over 64 bytes
    line.send(b"46.")                                         # the rest never comes
    wait_until(lambda: connector.statistics().get("failures_partial:" + line.gateway_port) == 1)
    line.send(b"47.25\r\nSN=AB12\n")
    wait_until(lambda: humidities(gateway, "M1") == [45.5, 47.25])
    wait_until(lambda: any(d["attributes"].get("serial") == "AB12" for d in gateway.sent))
    stats = connector.statistics()
    assert stats["failures_overlong:" + line.gateway_port] == 1
    assert stats["failures_frame:M1"] >= 2  # the garbage line, the SN line has no humidity


def test_frames_split_across_reads_are_joined(lines, connector_for):
    line = lines()
    connector, gateway = connector_for([meter("M1", line.gateway_port, frameTimeoutMs=2000)])
    wait_until(lambda: "M1" in gateway.devices)
    for chunk in (b"1", b"2.", b"5\r", b"\n"):
        line.send(chunk)
        threading.Event().wait(0.05)
    wait_until(lambda: humidities(gateway, "M1") == [12.5])
    assert connector.statistics().get("failures_partial:" + line.gateway_port) is None  # no piece dropped


def test_rpc_with_response_and_attribute_update(lines, connector_for):
    line = lines()
    connector, gateway = connector_for([meter("M1", line.gateway_port)])
    wait_until(lambda: "M1" in gateway.devices)

    def device():
        request = line.read_until(b"\n")
        if request == b"get 7\n":
            line.send(b"12.75\r\n")
    answer = threading.Thread(target=device)
    answer.start()
    connector.server_side_rpc_handler({"device": "M1", "data": {"id": 1, "method": "getValue", "params": "7"}})
    answer.join(5)
    wait_until(lambda: gateway.replies)
    assert gateway.replies[0] == ("M1", 1, {"result": 12.75})
    connector.server_side_rpc_handler({"device": "M1", "data": {"id": 2, "method": "silent", "params": None}})
    wait_until(lambda: len(gateway.replies) == 2)
    assert "no response" in gateway.replies[1][2]["error"]
    assert line.read_until(b"\n") == b"silent\n"
    connector.server_side_rpc_handler({"device": "M1", "data": {"id": 3, "method": "nope"}})
    wait_until(lambda: len(gateway.replies) == 3)
    assert "no serverSideRpc entry" in gateway.replies[2][2]["error"]
    connector.on_attributes_update({"device": "M1", "data": {"mode": "eco"}})
    assert line.read_until(b"\n").endswith(b"mode=eco\n")


def test_polled_devices_on_one_bus_are_asked_in_turn(lines, connector_for):
    line = lines()
    devices = [meter("A", line.gateway_port, requestString="A?\n", pollPeriod=100),
               meter("B", line.gateway_port, requestString="B?\n", pollPeriod=100)]
    connector, gateway = connector_for(devices)
    stop = threading.Event()

    def bus():
        answers = {b"A?\n": b"1.5\r\n", b"B?\n": b"2.5\r\n"}
        while not stop.is_set():
            request = line.read_until(b"\n", 0.2)
            if request in answers:
                line.send(answers[request])
    thread = threading.Thread(target=bus)
    thread.start()
    try:
        wait_until(lambda: len(humidities(gateway, "A")) >= 3 and len(humidities(gateway, "B")) >= 3)
    finally:
        stop.set()
        thread.join(5)
    assert set(humidities(gateway, "A")) == {1.5} and set(humidities(gateway, "B")) == {2.5}


def test_unplugged_adapter_is_reopened_and_other_ports_go_on(lines, connector_for):
    first, second = lines(), lines()
    connector, gateway = connector_for([meter("M1", first.gateway_port), meter("M2", second.gateway_port)])
    wait_until(lambda: set(gateway.devices) == {"M1", "M2"})
    first.unplug()
    wait_until(lambda: "M1" not in gateway.devices)
    second.send(b"5.5\r\n")
    wait_until(lambda: humidities(gateway, "M2") == [5.5])
    first.plug()
    wait_until(lambda: "M1" in gateway.devices, timeout=15)
    first.send(b"6.5\r\n")
    wait_until(lambda: humidities(gateway, "M1") == [6.5])
    assert connector.statistics()["failures_connection:" + first.gateway_port] == 1


def test_upstream_file_unchanged_end_to_end(tmp_path, lines, broker, platform, gateways):
    """custom_serial.json as upstream ships it (class CustomSerialConnector), only its port
    pointed at the pty: lines become telemetry, an RPC is answered through the platform."""
    line = lines()
    upstream = upstream_config("custom_serial.json")
    upstream["devices"][0]["port"] = line.gateway_port
    path = write_config(str(tmp_path), broker.port, files={"custom_serial.json": upstream},
                        connectors=[{"name": "Custom Serial Connector", "type": "serial",
                                     "configuration": "custom_serial.json", "class": "CustomSerialConnector"}])
    gateway = gateways(path)
    platform.wait_topic("v1/gateway/connect", lambda b: b["device"] == "SerialDevice1", timeout=20)
    line.send(b"55.5\r\n")
    platform.wait_for(lambda m: platform.latest("SerialDevice1").get("humidity") == 55.5)
    line.send(b"SN: AB12\r\n")  # SerialNumber: fromByte 4, trimmed as upstream does it
    serial_numbers = lambda: [b["SerialDevice1"]["SerialNumber"] for b in platform.on("v1/gateway/attributes")
                              if "SerialNumber" in b.get("SerialDevice1", {})]
    wait_until(serial_numbers)
    assert serial_numbers() == ["AB12"]  # "55.5\r" gave nothing but "\r" there: not sent
    request = platform.device_rpc("SerialDevice1", "setValue", 3)
    written = line.read_until(b"\n")
    assert written == b"setValue 3\n", gateway.output()[-3000:]
    line.send(b"OK\r")
    reply = platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == request and "method" not in b["data"])
    assert reply["data"] == {"result": "OK"}
    assert "Traceback" not in gateway.output()


def test_custom_converters_from_the_extensions_folder(lines, connector_for, monkeypatch):
    monkeypatch.setenv("TB_GW_EXTENSIONS_DIR", os.path.join(os.path.dirname(__file__), "..", "extensions"))
    line = lines()
    connector, gateway = connector_for([meter("M1", line.gateway_port, converter="ReversedUplink",
                                              downlink_converter="ShoutingDownlink")])
    wait_until(lambda: "M1" in gateway.devices)
    line.send(b"olleh\n")
    wait_until(lambda: [d["telemetry"][0]["values"] for d in gateway.sent] == [{"text": "hello"}])
    connector.on_attributes_update({"device": "M1", "data": {"mode": "eco"}})
    assert line.read_until(b"\n") == b"<ECO>\n"
