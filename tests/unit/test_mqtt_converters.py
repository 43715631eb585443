"""MQTT uplink converters beyond the case folders of tests/cases/mqtt (which the one case
runner, test_connector_cases.py, runs): properties over any payload, the report strategy
handed over."""
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from thingsboard_gateway.connectors.mqtt.uplink import BytesUplinkConverter
from thingsboard_gateway.conversion.mapped import JsonUplinkConverter

def make(config):
    cls = BytesUplinkConverter if config.get("type") == "bytes" else JsonUplinkConverter
    return cls(config, "mqtt.json", "converter")


def test_send_data_only_on_change_is_on_change_in_the_report_filter():
    """The converter keeps no state: it hands ON_CHANGE over; the gateway's one report
    filter passes only changes."""
    from thingsboard_gateway.conversion.report import ON_CHANGE
    from thingsboard_gateway.conversion.report_filter import ReportFilter
    converter = make({"deviceNameJsonExpression": "${id}", "sendDataOnlyOnChange": True,
                      "timeseries": [{"type": "integer", "key": "a", "value": "${a}"},
                                     {"type": "integer", "key": "b", "value": "${b}"}]})
    reports = ReportFilter()
    sent = []
    for n, message in enumerate([{"id": "D", "a": 1, "b": 2}, {"id": "D", "a": 1, "b": 3}, {"id": "D", "a": 1, "b": 3}]):
        converted = converter.convert_detailed("t", message, now_ms=n)[0][0]
        assert converted["reportStrategy"].device.type == ON_CHANGE
        telemetry, _ = reports.apply("mqtt", "D", "default", converted["telemetry"], {}, converted["reportStrategy"])
        sent.append(telemetry[0]["values"] if telemetry else None)
    assert sent == [{"a": 1, "b": 2}, {"b": 3}, None]


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                           lambda children: st.lists(children, max_size=4) |
                           st.dictionaries(st.text(max_size=5), children, max_size=4), max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_random_json_never_crashes_the_converter(payload):
    converter = make({"deviceInfo": {"deviceNameExpressionSource": "message", "deviceNameExpression": "${id}"},
                      "tsField": "${ts}",
                      "attributes": [{"type": "string", "key": "m", "value": "${model}"}],
                      "timeseries": [{"type": t, "key": t, "value": "${v or x[0].y}"}
                                     for t in ("integer", "double", "boolean", "string", "json", "raw")]})
    converted, failures = converter.convert_detailed("topic", payload, now_ms=5)
    for entry in converted:
        assert isinstance(entry["deviceName"], str) and entry["deviceName"]
    json.dumps(converted)  # whatever comes out can be sent
