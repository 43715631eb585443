"""Grouping stored records into Gateway API messages, and splitting what is too big (pure).

Telemetry of many devices travels in one `v1/gateway/telemetry` message
`{"Device A": [{"ts": .., "values": {..}}, ..], ..}` and attributes in one
`v1/gateway/attributes` message `{"Device A": {..}, ..}`, each at most `max_payload`
bytes and `max_datapoints` key/value pairs. Per-device order is kept: parts are
appended in record order and a message is closed before a part would overflow it.
A telemetry entry or attribute object too big for one message is split into several
with the same timestamp; a single key/value that cannot fit even alone is rejected
(returned, never retried). Records arrive serialized (storage/record.py), so packing
only concatenates text, except when it splits.
"""
import json
from typing import Dict, List, NamedTuple, Optional, Tuple

from thingsboard_gateway.platform.topics import ATTRIBUTES, TELEMETRY
from thingsboard_gateway.storage.record import Record, dumps

Message = NamedTuple("Message", [("topic", str), ("payload", bytes), ("datapoints", int)])
Packed = NamedTuple("Packed", [("messages", List[Message]), ("rejected", List[Tuple[str, str]])])


class _Builder(object):
    """One message being filled: device key -> JSON fragments."""

    def __init__(self, topic):
        self.topic = topic
        self.devices = {}  # type: Dict[str, List[str]]
        self.size = 2      # "{}"
        self.datapoints = 0

    def message(self):
        # type: () -> Message
        if self.topic == TELEMETRY:
            body = ",".join(k + ":[" + ",".join(v) + "]" for k, v in self.devices.items())
        else:
            body = ",".join(k + ":" + _merged(v) for k, v in self.devices.items())
        return Message(self.topic, ("{" + body + "}").encode(), self.datapoints)


def _merged(fragments):
    # type: (List[str]) -> str
    """One attributes object from several (later values win); the rare case parses."""
    if len(fragments) == 1:
        return fragments[0]
    merged = {}
    for fragment in fragments:
        merged.update(json.loads(fragment))
    return dumps(merged)


def _lone_size(device_key, fragment):
    return 2 + len(device_key) + 3 + len(fragment)


def _split(device_key, fragment, topic, max_payload, max_datapoints, rejected):
    # type: (str, str, str, int, Optional[int], List[Tuple[str, str]]) -> List[Tuple[str, int]]
    """Smaller fragments (with their datapoints) carrying one too-big entry or object.
    Linear in the entry's size: each key/value is serialized once and the parts are
    joined, so a poll of 100,000 values splits as fast per value as one of 100."""
    parsed = json.loads(fragment)
    if topic == TELEMETRY:
        values = parsed["values"]
        head, tail = '{"ts":' + dumps(parsed["ts"]) + ',"values":{', "}}"  # what dumps({"ts", "values"}) gives
    else:
        values = parsed
        head, tail = "{", "}"
    empty = _lone_size(device_key, head + tail)
    out = []  # type: List[Tuple[str, int]]
    items = []  # type: List[str]
    size = empty
    for key, value in values.items():
        item = dumps({key: value})[1:-1]  # "key":value
        if empty + len(item) > max_payload:
            rejected.append((json.loads(device_key), "value of %r is %d bytes, more than maxPayloadSizeBytes %d allows"
                             % (key, len(head) + len(item) + len(tail), max_payload)))
            continue
        grow = len(item) + (1 if items else 0)
        too_many = max_datapoints is not None and len(items) + 1 > max_datapoints
        if items and (too_many or size + grow > max_payload):
            out.append((head + ",".join(items) + tail, len(items)))
            items, size, grow = [], empty, len(item)
        items.append(item)
        size += grow
    if items:
        out.append((head + ",".join(items) + tail, len(items)))
    return out


def pack(records, max_payload, max_datapoints=None, renamed=None):
    # type: (List[Record], int, Optional[int], Optional[Dict[str, str]]) -> Packed
    """Messages carrying every telemetry entry and attribute of `records`, each within
    max_payload bytes and max_datapoints key/value pairs; and what had to be rejected.
    renamed: device key -> the key of the name the platform knows it by (DeviceNames.keys),
    so that records stored before a rename go out under the new name."""
    messages = []  # type: List[Message]
    rejected = []  # type: List[Tuple[str, str]]
    current = {TELEMETRY: _Builder(TELEMETRY), ATTRIBUTES: _Builder(ATTRIBUTES)}
    no_limit = max_datapoints is None
    lone_limit = max_payload - _lone_size("", "")  # a key and a fragment longer than this need a message of their own

    def add(topic, key, fragment, points):
        # (a function call per part counts at about 150 bytes a record: hence written out)
        builder = current[topic]
        devices = builder.devices
        parts = devices.get(key)
        cost = len(fragment) + 1 if parts is not None else len(key) + len(fragment) + (4 if devices else 3)
        if devices and (builder.size + cost > max_payload or not no_limit and builder.datapoints + points >
                        max_datapoints):
            messages.append(builder.message())
            builder = current[topic] = _Builder(topic)
            devices, parts, cost = builder.devices, None, len(key) + len(fragment) + 3  # "k":[f]
        builder.size += cost
        builder.datapoints += points
        if parts is None:
            devices[key] = [fragment]
        else:
            parts.append(fragment)

    def place(topic, key, fragment):
        """A part too big for one message: split."""
        for part, part_points in _split(key, fragment, topic, max_payload, max_datapoints, rejected):
            add(topic, key, part, part_points)

    for record in records:
        key = record.device_key
        if renamed:
            key = renamed.get(key, key)
        for fragment, points in zip(record.telemetry, record.entry_points):
            if len(key) + len(fragment) > lone_limit or not no_limit and points > max_datapoints:
                place(TELEMETRY, key, fragment)
            else:
                add(TELEMETRY, key, fragment, points)
        fragment = record.attributes
        if fragment:
            points = record.attribute_points
            if len(key) + len(fragment) > lone_limit or not no_limit and points > max_datapoints:
                place(ATTRIBUTES, key, fragment)
            else:
                add(ATTRIBUTES, key, fragment, points)
    for builder in current.values():
        if builder.devices:
            messages.append(builder.message())
    return Packed(messages, rejected)
