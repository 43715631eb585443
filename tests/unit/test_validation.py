"""Converted data is checked and normalized before storage."""
import pytest

from thingsboard_gateway.gateway.validation import normalize_record


def test_telemetry_without_ts_gets_receive_time():
    record, problem = normalize_record({"deviceName": "A", "telemetry": [{"t": 1}], "attributes": [{"a": 1}, {"b": 2}]},
                                       1234)
    assert problem is None
    assert (record.device, record.telemetry_entries(), record.attribute_values()) == \
        ("A", [{"ts": 1234, "values": {"t": 1}}], {"a": 1, "b": 2})
    assert record.device_type == '"default"'


def test_ts_is_kept():
    record, _ = normalize_record({"deviceName": "A", "deviceType": "x", "telemetry": {"ts": 5, "values": {"t": 1}}}, 9)
    assert record.telemetry_entries() == [{"ts": 5, "values": {"t": 1}}]


def test_nothing_to_send_is_not_an_error():
    assert normalize_record({"deviceName": "A", "telemetry": [], "attributes": {}}, 1) == (None, None)


@pytest.mark.parametrize("data,needle", [
    (None, "expected converted data"),
    ({"telemetry": []}, "deviceName"),
    ({"deviceName": ""}, "deviceName"),
    ({"deviceName": "A", "telemetry": "x"}, "telemetry must be"),
    ({"deviceName": "A", "telemetry": [1]}, "entries must be objects"),
    ({"deviceName": "A", "telemetry": [{"ts": "now", "values": {"a": 1}}]}, "ts must be"),
    ({"deviceName": "A", "attributes": 3}, "attributes must be"),
    ({"deviceName": "A", "telemetry": [{"x": {1, 2}}]}, "cannot be sent as JSON"),
    # names and types ThingsBoard cannot take (rule: scalar text, not blank, <= 255 characters)
    ({"deviceName": {"nested": [1, 2]}, "telemetry": [{"a": 1}]}, "deviceName must be text, got dict"),
    ({"deviceName": 42, "telemetry": [{"a": 1}]}, "deviceName must be text, got int"),
    ({"deviceName": "x" * 5000, "telemetry": [{"a": 1}]}, "deviceName is 5000 characters long (at most 255)"),
    ({"deviceName": "   ", "telemetry": [{"a": 1}]}, "deviceName is empty"),
    ({"deviceName": "a\nb", "telemetry": [{"a": 1}]}, "control characters"),
    ({"deviceName": "A", "deviceType": ["t"], "telemetry": [{"a": 1}]}, "deviceType must be text"),
    ({"deviceName": "A", "deviceType": "t" * 256, "telemetry": [{"a": 1}]}, "deviceType is 256 characters"),
    # values and timestamps JSON or ThingsBoard cannot carry
    ({"deviceName": "A", "telemetry": [{"x": float("nan")}]}, "cannot be sent as JSON"),
    ({"deviceName": "A", "attributes": {"x": float("inf")}}, "cannot be sent as JSON"),
    ({"deviceName": "A", "telemetry": [{"ts": 1e30, "values": {"a": 1}}]}, "out of range"),
    ({"deviceName": "A", "telemetry": [{"ts": -5, "values": {"a": 1}}]}, "out of range"),
])
def test_invalid_data_is_named(data, needle):
    record, problem = normalize_record(data, 1)
    assert record is None and needle in problem


def test_nesting_too_deep_for_json_is_refused_not_raised():
    deep = []
    for _ in range(100000):
        deep = [deep]
    record, problem = normalize_record({"deviceName": "A", "attributes": {"deep": deep}}, 1)
    assert record is None and "cannot be sent as JSON" in problem


def test_a_name_of_255_characters_is_fine():
    record, problem = normalize_record({"deviceName": "n" * 255, "telemetry": [{"a": 1}]}, 1)
    assert problem is None and record.device == "n" * 255
