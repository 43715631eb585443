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
])
def test_invalid_data_is_named(data, needle):
    record, problem = normalize_record(data, 1)
    assert record is None and needle in problem
