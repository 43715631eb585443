"""extensions/sysfs: the "connector in one file" example of extensions/README.md, on the
connector kit, reading files made by the test (as a Pi's sysfs would hold them)."""
import os

import pytest

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.connectors.registry import find_extension_class
from tests.support.gateway import ROOT
from tests.support.recorder import RecordingGateway
from tests.support.waiting import wait_until


def connector_for(tmp_path, gateway):
    cls = find_extension_class("SysfsConnector", "sysfs", [os.path.join(ROOT, "extensions")])
    config = {"name": "Board", "devices": [{"name": "Pi CPU", "type": "board", "pollPeriod": 50, "values": [
        {"key": "cpuTemperature", "path": str(tmp_path / "temp"), "scale": 0.001}]}]}
    return cls(gateway, config, "sysfs")


def test_polls_converts_and_answers_rpc_and_waits_for_a_missing_file(tmp_path):
    gateway = RecordingGateway()
    connector = connector_for(tmp_path, gateway)
    connector.open()
    try:
        wait_until(lambda: connector.statistics().get("failures_connect:files"), what="a failed connect")
        assert gateway.sent == [] and gateway.devices == []
        (tmp_path / "temp").write_text("48312\n")
        wait_until(lambda: gateway.sent, timeout=15, what="a reading after the file appeared")
        assert gateway.sent[0]["deviceName"] == "Pi CPU"
        assert gateway.sent[0]["telemetry"][0]["values"] == {"cpuTemperature": 48.312}
        assert gateway.devices == ["Pi CPU"]
        (tmp_path / "temp").write_text("50000\n")
        connector.server_side_rpc_handler({"device": "Pi CPU", "data": {"id": 3, "method": "read",
                                                                        "params": {"key": "cpuTemperature"}}})
        wait_until(lambda: gateway.replies, what="the RPC reply")
        assert gateway.replies == [("Pi CPU", 3, {"value": 50.0})]
    finally:
        connector.close()
    assert gateway.devices == []


def test_its_file_is_checked_by_its_own_load_config(tmp_path):
    cls = find_extension_class("SysfsConnector", "sysfs", [os.path.join(ROOT, "extensions")])
    with pytest.raises(ConfigError) as info:
        cls.load_config({"devices": [{"name": "x"}]}, "sysfs.json")
    assert str(info.value) == "sysfs.json: devices[0]: needs a name and values"


def test_the_listening_example_converts_lines_and_writes_back_on_its_io_thread():
    """extensions/linecounter: lines from two TCP devices become their telemetry; a bad
    line is counted; the RPC `send` and the attribute `display` reach the device's
    connection from the io thread, never the caller's."""
    import socket
    import threading
    from tests.support.broker import free_port
    cls = find_extension_class("LineCounterConnector", "linecounter", [os.path.join(ROOT, "extensions")])
    port, gateway = free_port(), RecordingGateway()
    connector = cls(gateway, {"name": "Lines", "port": port, "key": "n"}, "linecounter")
    connector.open()
    try:
        a = socket.create_connection(("127.0.0.1", port), 5)
        b = socket.create_connection(("127.0.0.1", port), 5)
        a.settimeout(5)
        a.sendall(b"Meter A 1\nMeter A 2\nnoname\n")
        b.sendall(b"B 7.5\nB x\n")
        wait_until(lambda: len(gateway.sent) == 3, what="three values")
        values = sorted((d["deviceName"], d["telemetry"][0]["values"]["n"]) for d in gateway.sent)
        assert values == [("B", 7.5), ("Meter A", 1.0), ("Meter A", 2.0)]
        stats = connector.statistics()
        assert stats["lines"] == 4 and stats["failures_line"] == 1 and stats["failures_converter:B"] == 1
        connector.server_side_rpc_handler({"device": "Meter A", "data": {"id": 1, "method": "send", "params": "hi"}})
        assert a.recv(100) == b"hi\n"
        wait_until(lambda: gateway.replies, what="the RPC reply")
        assert gateway.replies == [("Meter A", 1, {"success": True})]
        connector.on_attributes_update({"device": "Meter A", "data": {"display": 42, "other": 1}})
        assert a.recv(100) == b"display=42\n"
        assert connector.io is not None and connector.io.endpoint == "io"
        a.close()
        b.close()
    finally:
        connector.close()
    assert not any(t.name.startswith("connector:Lines") and t.is_alive() for t in threading.enumerate())
