"""Grouping stored records into Gateway API messages (pure).

Telemetry of many devices travels in one `v1/gateway/telemetry` message
`{"Device A": [{"ts": .., "values": {..}}, ..], ..}` and attributes in one
`v1/gateway/attributes` message `{"Device A": {..}, ..}`, each up to `max_payload`
bytes. Per-device order is kept: entries are appended in record order and a message
is closed before a device's next entry would overflow it.
"""
import json
from typing import Any, Dict, List, Tuple

from thingsboard_gateway.platform.topics import ATTRIBUTES, TELEMETRY

_SEPARATORS = (",", ":")


def _dumps(value):
    return json.dumps(value, separators=_SEPARATORS)


class _TelemetryMessage(object):
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

    def payload(self):
        return ("{" + ",".join(k + ":[" + ",".join(v) + "]" for k, v in self.devices.items()) + "}").encode()


class _AttributeMessage(object):
    def __init__(self):
        self.devices = {}  # type: Dict[str, Dict[str, Any]]
        self.size = 2

    def cost(self, device_key, fragment):
        # An over-estimate when a key repeats (merged), never an under-estimate.
        return len(device_key) + 2 + len(fragment) + 1

    def add(self, device_key, fragment, values):
        self.size += self.cost(device_key, fragment)
        self.devices.setdefault(device_key, {}).update(values)

    def payload(self):
        return ("{" + ",".join(k + ":" + _dumps(v) for k, v in self.devices.items()) + "}").encode()


def pack(records, max_payload):
    # type: (List[Dict[str, Any]], int) -> List[Tuple[str, bytes]]
    """Messages (topic, payload) carrying every telemetry entry and attribute of `records`.

    An entry larger than max_payload on its own still goes, alone in its message.
    """
    out = []  # type: List[Tuple[str, bytes]]
    telemetry = _TelemetryMessage()
    attributes = _AttributeMessage()
    for record in records:
        device_key = _dumps(record["deviceName"])
        for entry in record.get("telemetry") or ():
            fragment = _dumps(entry)
            if telemetry.devices and telemetry.size + telemetry.cost(device_key, fragment) > max_payload:
                out.append((TELEMETRY, telemetry.payload()))
                telemetry = _TelemetryMessage()
            telemetry.add(device_key, fragment)
        values = record.get("attributes")
        if values:
            fragment = _dumps(values)
            if attributes.devices and attributes.size + attributes.cost(device_key, fragment) > max_payload:
                out.append((ATTRIBUTES, attributes.payload()))
                attributes = _AttributeMessage()
            attributes.add(device_key, fragment, values)
    if telemetry.devices:
        out.append((TELEMETRY, telemetry.payload()))
    if attributes.devices:
        out.append((ATTRIBUTES, attributes.payload()))
    return out
