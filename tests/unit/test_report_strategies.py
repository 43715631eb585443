"""Report strategies and device filtering (pure parts), data-driven: each folder under
tests/cases/report/ is a case. config.json: {"general", "connector" (strategies), "device"
(a device entry: its reportStrategy and its timeseries/attributes entries)}; steps.json:
the values a device sends ({"telemetry": {...}, "attributes": {...}}) and the period
jobs that run ({"period": ms}); expected.json: per step, what is sent ({} for nothing).
Step n happens at wall time n seconds; a sent telemetry entry shows its ts."""
import json
import os

import pytest

from thingsboard_gateway.config.device_filter import compile_rules
from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.report_strategy import RECEIVED, check_strategies, parse_strategy
from thingsboard_gateway.conversion.report import device_strategy, differs
from thingsboard_gateway.conversion.report_filter import ReportFilter
from thingsboard_gateway.gateway.device_filter import DeviceFilter

CASES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "cases", "report")


def run_case(folder):
    config = json.load(open(os.path.join(folder, "config.json")))
    steps = json.load(open(os.path.join(folder, "steps.json")))
    now = [0.0]
    connectors = {"C": parse_strategy(config["connector"])} if config.get("connector") else {}
    reports = ReportFilter(parse_strategy(config["general"]) if config.get("general") else RECEIVED, connectors,
                           wall=lambda: now[0])
    strategy = device_strategy(config.get("device") or {})
    sent = []
    for n, step in enumerate(steps):
        now[0] = float(n)
        if "period" in step:
            resends = reports.due(step["period"])
            assert len(resends) <= 1
            out = {}
            for connector, data in resends:
                assert connector == "C" and data["deviceName"] == "D"
                if data["telemetry"]:
                    out["telemetry"] = data["telemetry"][0]["values"]
                    out["ts"] = data["telemetry"][0]["ts"]
                if data["attributes"]:
                    out["attributes"] = data["attributes"]
            sent.append(out)
            continue
        telemetry = [{"ts": n, "values": step["telemetry"]}] if step.get("telemetry") else []
        telemetry, attributes = reports.apply("C", "D", "default", telemetry, dict(step.get("attributes") or {}),
                                              strategy)
        out = {}
        if telemetry:
            out["telemetry"] = telemetry[0]["values"]
        if attributes:
            out["attributes"] = attributes
        sent.append(out)
    return sent


@pytest.mark.parametrize("name", sorted(os.listdir(CASES)))
def test_report_case(name):
    folder = os.path.join(CASES, name)
    assert run_case(folder) == json.load(open(os.path.join(folder, "expected.json")))


def test_floats_within_a_thousandth_are_unchanged():
    assert not differs(20.0, 20.0009) and differs(20.0, 20.002)
    assert differs(1, True) and differs("1", 1) and not differs({"a": [1]}, {"a": [1]})


def test_a_bad_strategy_names_the_key_and_what_was_expected():
    with pytest.raises(ConfigError) as info:
        check_strategies({"master": {"slaves": [{"reportStrategy": {"type": "SOMETIMES"}}]}}, "modbus.json")
    assert str(info.value).startswith("modbus.json: master.slaves[0].reportStrategy.type: expected one of ON_RECEIVED")
    with pytest.raises(ConfigError) as info:
        check_strategies({"reportStrategy": {"type": "ON_REPORT_PERIOD", "reportPeriod": "5s"}}, "mqtt.json")
    assert str(info.value) == "mqtt.json: reportStrategy.reportPeriod: expected milliseconds, an integer >= 100"
    assert check_strategies({"reportStrategy": {"type": "on_report_period"}, "devices": [
        {"reportStrategy": {"type": "ON_CHANGE_OR_REPORT_PERIOD", "reportPeriod": 500}}]}, "x.json") == [10000, 500]


def test_datapoint_strategies_are_found_by_key_or_modbus_tag():
    entry = {"reportStrategy": {"type": "ON_CHANGE"},
             "timeseries": [{"tag": "t", "reportStrategy": {"type": "ON_RECEIVED"}}, {"tag": "u"}],
             "attributes": [{"key": "a", "reportStrategy": {"type": "ON_REPORT_PERIOD", "reportPeriod": 2000}}]}
    strategy = device_strategy(entry)
    assert strategy.for_key("t").type == "ON_RECEIVED" and strategy.for_key("u").type == "ON_CHANGE"
    assert strategy.for_key("a") == ("ON_REPORT_PERIOD", 2000)
    assert device_strategy({"timeseries": [{"key": "x"}]}) is None


def test_a_new_period_is_announced_once():
    announced = []
    reports = ReportFilter(parse_strategy({"type": "ON_REPORT_PERIOD", "reportPeriod": 500}),
                           on_new_period=announced.append)
    for n in range(3):
        reports.apply("C", "D%d" % n, "default", [{"ts": 1, "values": {"k": n}}], {}, None)
    assert announced == [500] and reports.periods() == [500] and len(reports) == 3


def test_device_filter_deny_wins_and_names_must_match_whole():
    rules = compile_rules({"deny": {"Modbus": ["Meter.*", "Pump 1"]}, "allow": {"Modbus": ["Meter 7"]}}, "list.json")
    devices = DeviceFilter(rules, aliases={"Modbus Connector": "Modbus"})
    assert devices.denied("Modbus", "Meter 7")  # deny wins over allow
    assert devices.denied("Modbus Connector", "Meter 1")  # the file's own connector name is an alias
    assert not devices.denied("Modbus", "Pump 12")  # whole name only
    assert not devices.denied("Modbus", "My Meter 1")
    assert not devices.denied("MQTT", "Meter 1")  # other connectors' devices pass


@pytest.mark.parametrize("content,error", [
    ({"deny": {"Modbus": ["(unclosed"]}}, "list.json: deny.Modbus[0]: not a regular expression: missing ), "),
    ({"deny": ["x"]}, "list.json: deny: expected an object: connector name -> list of regular expressions"),
    ({"refuse": {}}, 'list.json: refuse: unknown key (expected "deny" and "allow")'),
    ({"allow": {"M": [3]}}, "list.json: allow.M[0]: expected a regular expression (text)"),
])
def test_a_bad_filter_file_is_one_line(content, error):
    with pytest.raises(ConfigError) as info:
        compile_rules(content, "list.json")
    assert str(info.value).startswith(error)
