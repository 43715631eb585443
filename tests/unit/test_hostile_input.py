"""Property tests over hostile input: whatever a device sends and whatever expressions
a config holds, no exception escapes a converter, and no device name ThingsBoard cannot
take passes the one shared check (gateway/validation.py) every connector's data goes
through."""
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.connectors.mqtt.uplink import BytesUplinkConverter
from thingsboard_gateway.conversion.mapped import JsonUplinkConverter
from thingsboard_gateway.conversion.casting import TYPES
from thingsboard_gateway.gateway.validation import MAX_NAME, name_problem, normalize_record

KEYS = st.sampled_from(["name", "id", "value", "t", "nested", "a b", "ünï", ""])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10 ** 400, max_value=10 ** 400),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=300),
                    st.just("x" * 5000), st.just("\x00\n"), st.just("1e400"), st.just("NaN"))
VALUES = st.recursive(SCALARS, lambda children: st.lists(children, max_size=4) |
                      st.dictionaries(KEYS, children, max_size=4), max_leaves=20)
EXPRESSIONS = st.one_of(KEYS.map(lambda k: "${%s}" % k), st.just("${nested.name}"), st.just("${nested[0]}"),
                        st.just("prefix ${id} suffix"), st.text(max_size=30))
SLICES = st.one_of(st.just("[:]"), st.just("[0:4]"), st.just("[4:]"), st.just("[2]"), st.just("[-3:]"),
                   st.just("Dev ${[0:2]}"), st.just("[100:200]"))


def json_config(name_expression, type_expression, value_expression, type_name):
    return {"type": "json",
            "deviceInfo": {"deviceNameExpressionSource": "message", "deviceNameExpression": name_expression,
                           "deviceProfileExpressionSource": "message", "deviceProfileExpression": type_expression},
            "attributes": [{"type": type_name, "key": "attr", "value": value_expression}],
            "timeseries": [{"type": type_name, "key": "${id}", "value": value_expression},
                           {"type": "json", "key": "whole", "value": "${nested}"}],
            "tsField": "${t}"}


def assert_only_sendable_names(converted):
    for data in converted:
        record, problem = normalize_record(data, 1700000000000)
        if record is not None:
            assert name_problem("deviceName", record.device) is None
            assert len(record.device) <= MAX_NAME
            json.loads('{"d": %s}' % record.device_key)  # the name is valid JSON text
            for entry in record.telemetry:
                json.loads(entry)  # strict JSON: no NaN or Infinity reaches the platform
            if record.attributes:
                json.loads(record.attributes)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.one_of(VALUES, st.lists(VALUES, max_size=3)), name=EXPRESSIONS, kind=EXPRESSIONS,
       value=EXPRESSIONS, type_name=st.sampled_from(TYPES))
def test_json_converter_never_raises_and_never_passes_a_bad_name(payload, name, kind, value, type_name):
    try:
        converter = JsonUplinkConverter(json_config(name, kind, value, type_name), "mqtt.json", "converter")
    except ConfigError:
        return  # a bad expression is refused when the file loads, in one line
    converted, failures = converter.convert_detailed("sensor/x/data", payload, now_ms=1700000000000)
    assert all(f.reason for f in failures)
    assert_only_sendable_names(converted)


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=64), name=SLICES, value=SLICES, type_name=st.sampled_from(TYPES))
def test_bytes_converter_never_raises_and_never_passes_a_bad_name(payload, name, value, type_name):
    config = {"type": "bytes", "deviceInfo": {"deviceNameExpressionSource": "message", "deviceNameExpression": name},
              "timeseries": [{"type": type_name, "key": "v", "value": value}]}
    converter = BytesUplinkConverter(config, "mqtt.json", "converter")
    converted, _ = converter.convert_detailed("raw/data", payload, now_ms=1700000000000)
    assert_only_sendable_names(converted)


@settings(max_examples=300, deadline=None)
@given(data=st.dictionaries(st.sampled_from(["deviceName", "deviceType", "telemetry", "attributes"]), VALUES))
def test_shared_check_never_raises_on_any_converted_data(data):
    record, problem = normalize_record(data, 1700000000000)
    assert record is None or name_problem("deviceName", record.device) is None
