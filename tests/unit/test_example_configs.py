"""Every connector example we ship in config/, and upstream's example of each type we
implement, loads through its connector class with no warning (but the ones named here)."""
import json
import os

import pytest

from tests.support.upstream import upstream_config
from thingsboard_gateway.connectors.registry import BUILTIN, _import_builtin

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

OURS = {"mqtt.json": "mqtt", "modbus.json": "modbus", "opcua.json": "opcua", "serial.json": "serial",
        "socket.json": "socket", "rest.json": "rest", "request.json": "request", "ble.json": "ble",
        "snmp.json": "snmp"}
THEIRS = {"custom_serial.json": "serial", "socket.json": "socket", "rest.json": "rest", "request.json": "request",
          "modbus.json": "modbus", "modbus_serial.json": "modbus",
          "ble.json": "ble", "snmp.json": "snmp"}
# Upstream's snmp.json names two devices alike and a converter class upstream does not ship.
EXPECTED_WARNINGS = {("theirs", "request.json"): ["processingFunction"],
                     ("theirs", "snmp.json"): ["several devices are called SNMP router", "CustomSNMPConverter"]}


@pytest.mark.parametrize("where,name", [("ours", n) for n in sorted(OURS)] + [("theirs", n) for n in sorted(THEIRS)])
def test_example_loads(where, name):
    if where == "ours":
        kind = OURS[name]
        with open(os.path.join(ROOT, "config", name)) as f:
            config = json.load(f)
    else:
        kind, config = THEIRS[name], upstream_config(name)
    cls = _import_builtin(BUILTIN[kind])
    warnings = []
    loaded = cls.load_config(config, name, warnings)
    expected = EXPECTED_WARNINGS.get((where, name), [])
    assert len(warnings) == len(expected) and all(e in w for e, w in zip(expected, warnings)), warnings
    assert cls.describe_config(loaded)


@pytest.mark.parametrize("name,kind", sorted(dict(THEIRS, **{"mqtt.json": "mqtt", "modbus.json": "modbus",
                                                             "opcua.json": "opcua"}).items()))
def test_check_tells_the_connector_type_from_upstreams_files(name, kind):
    """`check --connector FILE --sample S` picks the converter by the file's keys."""
    from thingsboard_gateway.connectors.dry_run import connector_kind
    assert connector_kind(upstream_config(name), name) == kind


def test_check_dry_runs_a_serial_sample(tmp_path):
    from thingsboard_gateway.connectors.dry_run import dry_run
    sample = tmp_path / "frame.json"
    sample.write_text(json.dumps({"frame": "45.5\r SN=1", "ts": 1}))
    assert dry_run(os.path.join(ROOT, "config", "serial.json"), None, str(sample)) == 0
    sample.write_text(json.dumps({"frame": "x\r"}))
    assert dry_run(os.path.join(ROOT, "config", "serial.json"), None, str(sample)) == 1


def test_a_bad_response_value_expression_is_refused_at_load():
    """Compiled with the file (it used to be compiled at each RPC, where a bad one ended
    the sender thread)."""
    from thingsboard_gateway.config.errors import ConfigError
    from thingsboard_gateway.connectors.request.connector import RequestConnector
    config = {"host": "http://127.0.0.1:1", "serverSideRpc": [
        {"methodFilter": "echo", "requestUrlExpression": "x", "responseValueExpression": "${temp"}]}
    with pytest.raises(ConfigError) as info:
        RequestConnector.load_config(config, "request.json", [])
    assert str(info.value).startswith("request.json: serverSideRpc[0].responseValueExpression: unclosed ${")


def test_check_shows_the_report_strategies_a_converter_hands_over(tmp_path, capsys):
    """A device's reportStrategy travels with its converted data; the dry run prints what
    it sets (it used to end in a TypeError traceback)."""
    from thingsboard_gateway.connectors.dry_run import dry_run
    config = tmp_path / "serial.json"
    config.write_text(json.dumps({"devices": [{"name": "M", "port": "/dev/ttyUSB0",
                                               "reportStrategy": {"type": "on_change"},
                                               "telemetry": [{"key": "t", "type": "float", "untilDelimiter": ";",
                                                              "reportStrategy": {"type": "ON_REPORT_PERIOD",
                                                                                 "reportPeriod": 5000}}]}]}))
    sample = tmp_path / "frame.json"
    sample.write_text(json.dumps({"frame": "1.5;", "ts": 1}))
    assert dry_run(str(config), None, str(sample)) == 0
    printed = json.loads(capsys.readouterr().out.split("converted:", 1)[1])
    assert printed["reportStrategy"] == {"device": {"type": "ON_CHANGE", "reportPeriod": 10000},
                                         "keys": {"t": {"type": "ON_REPORT_PERIOD", "reportPeriod": 5000}}}
