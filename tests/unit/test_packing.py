"""Grouping records into Gateway API messages: nothing lost, order kept, size respected."""
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from thingsboard_gateway.platform.packing import pack


def record(device, seq, attrs=None):
    return {"deviceName": device, "deviceType": "t", "telemetry": [{"ts": seq, "values": {"seq": seq}}],
            "attributes": attrs or {}}


def unpack(messages):
    telemetry, attributes = [], {}
    for topic, payload in messages:
        body = json.loads(payload.decode())
        if topic == "v1/gateway/telemetry":
            for device, entries in body.items():
                telemetry.extend((device, e["values"]["seq"]) for e in entries)
        else:
            for device, values in body.items():
                attributes.setdefault(device, {}).update(values)
    return telemetry, attributes


def test_devices_share_one_message_when_small():
    messages = pack([record("A", 1), record("B", 2), record("A", 3, {"fw": "1"})], 10000)
    assert [t for t, _ in messages] == ["v1/gateway/telemetry", "v1/gateway/attributes"]
    assert json.loads(messages[0][1]) == {"A": [{"ts": 1, "values": {"seq": 1}}, {"ts": 3, "values": {"seq": 3}}],
                                          "B": [{"ts": 2, "values": {"seq": 2}}]}
    assert json.loads(messages[1][1]) == {"A": {"fw": "1"}}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "B", "Ü-dev", "x" * 40]), st.integers(0, 10 ** 12)), max_size=80),
       st.integers(120, 2000))
def test_pack_keeps_everything_in_order_within_size(items, max_payload):
    records = [record(device, seq) for device, seq in items]
    messages = pack(records, max_payload)
    for _, payload in messages:
        assert len(payload) <= max_payload
    telemetry, _ = unpack(messages)
    assert sorted(telemetry) == sorted(items)  # nothing lost, nothing twice
    for device in {d for d, _ in items}:
        assert [s for d, s in telemetry if d == device] == [s for d, s in items if d == device]


def test_oversized_entry_goes_alone():
    big = {"deviceName": "A", "telemetry": [{"ts": 1, "values": {"seq": 1, "blob": "x" * 500}}]}
    messages = pack([record("A", 0), big, record("A", 2)], 200)
    assert len(messages) == 3
    assert unpack(messages)[0] == [("A", 0), ("A", 1), ("A", 2)]
