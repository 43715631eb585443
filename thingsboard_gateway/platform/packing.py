"""Grouping stored records into Gateway API messages (pure).

Telemetry of many devices travels in one `v1/gateway/telemetry` message
`{"Device A": [{"ts": .., "values": {..}}, ..], ..}` and attributes in one
`v1/gateway/attributes` message `{"Device A": {..}, ..}`, each up to `max_payload`
bytes. Per-device order is kept: entries are appended in record order and a message
is closed before a device's next entry would overflow it. Records arrive serialized
(storage/record.py), so packing only concatenates text.
"""
import json
from typing import Dict, List, Tuple

from thingsboard_gateway.platform.topics import ATTRIBUTES, TELEMETRY
from thingsboard_gateway.storage.record import Record, dumps


class _Message(object):
    """device key -> JSON fragments, with the size of the payload they make."""

    def __init__(self):
        self.devices = {}  # type: Dict[str, List[str]]
        self.size = 2      # "{}"

    def cost(self, device_key, fragment):
        if device_key in self.devices:
            return len(fragment) + 1
        return len(device_key) + 3 + len(fragment) + (1 if self.devices else 0)  # "k":[f] and a comma

    def add(self, device_key, fragment):
        self.size += self.cost(device_key, fragment)
        self.devices.setdefault(device_key, []).append(fragment)

    def telemetry_payload(self):
        # type: () -> bytes
        return ("{" + ",".join(k + ":[" + ",".join(v) + "]" for k, v in self.devices.items()) + "}").encode()

    def attributes_payload(self):
        # type: () -> bytes
        return ("{" + ",".join(k + ":" + _merged(v) for k, v in self.devices.items()) + "}").encode()


def _merged(fragments):
    # type: (List[str]) -> str
    """One attributes object from several (later values win); the rare case parses."""
    if len(fragments) == 1:
        return fragments[0]
    merged = {}
    for fragment in fragments:
        merged.update(json.loads(fragment))
    return dumps(merged)


def pack(records, max_payload):
    # type: (List[Record], int) -> List[Tuple[str, bytes]]
    """Messages (topic, payload) carrying every telemetry entry and attribute of `records`.

    An entry larger than max_payload on its own still goes, alone in its message.
    """
    out = []  # type: List[Tuple[str, bytes]]
    telemetry = _Message()
    attributes = _Message()
    for record in records:
        key = record.device_key
        for fragment in record.telemetry:
            if telemetry.devices and telemetry.size + telemetry.cost(key, fragment) > max_payload:
                out.append((TELEMETRY, telemetry.telemetry_payload()))
                telemetry = _Message()
            telemetry.add(key, fragment)
        if record.attributes:
            if attributes.devices and attributes.size + attributes.cost(key, record.attributes) > max_payload:
                out.append((ATTRIBUTES, attributes.attributes_payload()))
                attributes = _Message()
            attributes.add(key, record.attributes)
    if telemetry.devices:
        out.append((TELEMETRY, telemetry.telemetry_payload()))
    if attributes.devices:
        out.append((ATTRIBUTES, attributes.attributes_payload()))
    return out
