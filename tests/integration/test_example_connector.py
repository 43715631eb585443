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
        wait_until(lambda: connector.worker.failures.snapshot().get("connect:files"), what="a failed connect")
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
