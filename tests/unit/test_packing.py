"""Grouping records into Gateway API messages: nothing lost, order kept, size respected."""
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from thingsboard_gateway.platform.packing import pack
from thingsboard_gateway.storage.record import Record
from tests.support.records import rec


def unpack(messages):
    telemetry, attributes = [], {}
    for topic, payload, _ in messages:
        body = json.loads(payload.decode())
        if topic == "v1/gateway/telemetry":
            for device, entries in body.items():
                telemetry.extend((device, e["values"]["seq"]) for e in entries)
        else:
            for device, values in body.items():
                attributes.setdefault(device, {}).update(values)
    return telemetry, attributes


def test_devices_share_one_message_when_small():
    messages = pack([rec(1, "A"), rec(2, "B"), rec(3, "A", {"fw": "1"}), rec(4, "A", {"hw": 2, "fw": "2"})], 10000).messages
    assert [t for t, _, _ in messages] == ["v1/gateway/telemetry", "v1/gateway/attributes"]
    assert json.loads(messages[0][1]) == {"A": [{"ts": 1, "values": {"seq": 1}}, {"ts": 3, "values": {"seq": 3}},
                                                {"ts": 4, "values": {"seq": 4}}],
                                          "B": [{"ts": 2, "values": {"seq": 2}}]}
    assert json.loads(messages[1][1]) == {"A": {"fw": "2", "hw": 2}}   # merged, later wins


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "B", "Ü-dev", "x" * 40, 'q"uote']), st.integers(0, 10 ** 12)),
                max_size=80),
       st.integers(120, 2000))
def test_pack_keeps_everything_in_order_within_size(items, max_payload):
    packed = pack([rec(seq, device) for device, seq in items], max_payload)
    messages = packed.messages
    assert packed.rejected == []
    for _, payload, _ in messages:
        assert len(payload) <= max_payload
    telemetry, _ = unpack(messages)
    assert sorted(telemetry) == sorted(items)  # nothing lost, nothing twice
    for device in {d for d, _ in items}:
        assert [s for d, s in telemetry if d == device] == [s for d, s in items if d == device]


def test_oversized_entry_is_split_keeping_ts_and_order():
    big = Record.build("A", "t", [{"ts": 1, "values": {"seq": 1, "blob": "x" * 120, "more": "y" * 120}}])
    packed = pack([rec(0, "A"), big, rec(2, "A")], 200)
    assert packed.rejected == []
    parts = [json.loads(p) for t, p, _ in packed.messages]
    assert all(len(p) <= 200 for _, p, _ in packed.messages)
    entries = [e for body in parts for e in body["A"]]
    stamps = [e["ts"] for e in entries]
    assert stamps[0] == 0 and stamps[-1] == 2 and set(stamps[1:-1]) == {1} and len(stamps) >= 4
    merged = {}
    for e in entries[1:-1]:
        merged.update(e["values"])
    assert merged == {"seq": 1, "blob": "x" * 120, "more": "y" * 120}


def test_a_value_that_cannot_fit_is_rejected_not_retried():
    big = Record.build("A", "t", [{"ts": 1, "values": {"ok": 1, "huge": "x" * 500}}])
    packed = pack([big], 200)
    assert [json.loads(p) for _, p, _ in packed.messages] == [{"A": [{"ts": 1, "values": {"ok": 1}}]}]
    assert packed.rejected and "huge" in packed.rejected[0][1]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.text("abc", min_size=1, max_size=3), st.integers(0, 10 ** 6), min_size=1,
                                max_size=12), min_size=1, max_size=20),
       st.integers(1, 10), st.integers(150, 600))
def test_datapoint_and_size_limits_hold_and_nothing_is_lost(entries, max_datapoints, max_payload):
    records = [Record.build("Dev", "t", [{"ts": i, "values": values}]) for i, values in enumerate(entries)]
    packed = pack(records, max_payload, max_datapoints)
    assert packed.rejected == []
    got = {}
    for topic, payload, points in packed.messages:
        body = json.loads(payload.decode())
        assert len(payload) <= max_payload
        assert points <= max_datapoints
        assert points == sum(len(e["values"]) for e in body["Dev"])
        for e in body["Dev"]:
            got.setdefault(e["ts"], {}).update(e["values"])
    assert got == {i: values for i, values in enumerate(entries)}


def test_record_round_trips_through_its_stored_form():
    record = Record.build('dev "1" ü\n', "type\x1f", [{"ts": 1, "values": {"k": "a\x1eb"}}], {"x": [1, 2]})
    again = Record.decode(record.encode())
    assert again == record
    assert again.device == 'dev "1" ü\n' and again.telemetry_entries() == [{"ts": 1, "values": {"k": "a\x1eb"}}]
