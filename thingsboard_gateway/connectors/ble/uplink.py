"""The BLE uplink converter (pure): characteristic bytes -> values by upstream's byte
templates. In `valueExpression` each `[n]`, `[a:b]`, `[:]` is replaced by the decimal
numbers of those bytes written one after another (upstream's rule: b"\\x01\\x02" with
"[0:2]cm" gives "12cm"); other text stays. A key with `type` is cast to it; without, an
expression that is one `[n]` gives that byte as a number, anything else the text."""
import re
from typing import Any, Dict, List, Optional, Tuple, Union

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.conversion.converter import Converter
from thingsboard_gateway.conversion.report import device_strategy
from thingsboard_gateway.conversion.casting import STRING_TYPES, CastError, cast, device_text

_PART = re.compile(r"\[\s*(-?\d*)\s*(:?)\s*(-?\d*)\s*\]")

Part = Union[str, slice, int]


def parse_expression(source, file="ble.json", path="valueExpression"):
    # type: (str, str, str) -> List[Part]
    """Text and byte selections of a valueExpression; ConfigError for `[x]` that is no selection."""
    parts = []  # type: List[Part]
    position = 0
    for match in _PART.finditer(source):
        if match.start() > position:
            parts.append(source[position:match.start()])
        start, colon, end = match.groups()
        if colon:
            parts.append(slice(int(start) if start else None, int(end) if end else None))
        elif start:
            parts.append(int(start))
        else:
            raise ConfigError(file, path, "empty [] at column %d of %r" % (match.start() + 1, source))
        position = match.end()
    if position < len(source):
        parts.append(source[position:])
    return parts


def evaluate(parts, data):
    # type: (List[Part], bytes) -> Any
    """The value of parsed parts for `data`; ValueError when an index is beyond the data."""
    if len(parts) == 1 and isinstance(parts[0], int):
        try:
            return data[parts[0]]
        except IndexError:
            raise ValueError("no byte %d in %d bytes" % (parts[0], len(data)))
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, int):
            try:
                out.append(str(data[part]))
            except IndexError:
                raise ValueError("no byte %d in %d bytes" % (part, len(data)))
        else:
            out.append("".join(str(b) for b in data[part]))
    return "".join(out)


class BleUplinkConverter(Converter):
    """Pure: (device config, {"values": {characteristic UUID: bytes}, "ts": ms}) -> data of
    the keys whose characteristic is in `values` (a read cycle or one notification). A
    device's keys are compiled at its first values."""

    def __init__(self, config=None):
        super(BleUplinkConverter, self).__init__(config)
        self._plans = {}  # type: Dict[int, Tuple[Dict[str, Any], List[Tuple[bool, str, str, List[Part], Any]], Any]]

    def convert(self, config, data):
        return self.convert_detailed(config, data)[0]

    def _plan(self, config):
        # type: (Dict[str, Any]) -> Tuple[List[Tuple[bool, str, str, List[Part], Any]], Any]
        """(the device's compiled keys, its report strategies or None), made at its first values."""
        cached = self._plans.get(id(config))
        if cached is None or cached[0] is not config:
            keys = [(section == "telemetry", entry["key"], entry["characteristicUUID"],
                     parse_expression(entry.get("valueExpression", "[:]")), entry.get("type"))
                    for section in ("telemetry", "attributes") for entry in config.get(section) or []]
            cached = self._plans[id(config)] = (config, keys, device_strategy(config))
        return cached[1], cached[2]

    def convert_detailed(self, config, data):
        # type: (Dict[str, Any], Dict[str, Any]) -> Tuple[Optional[Dict[str, Any]], List[Tuple[str, str]]]
        return self.convert_values(config, data["values"], data["ts"])

    def convert_values(self, config, values, ts):
        # type: (Dict[str, Any], Dict[str, bytes], int) -> Tuple[Optional[Dict[str, Any]], List[Tuple[str, str]]]
        """convert_detailed without the wrapping dict (the connector's path); ts in ms, given."""
        failures = []  # type: List[Tuple[str, str]]
        telemetry, attributes = {}, {}  # type: Dict[str, Any], Dict[str, Any]
        keys, strategy = self._plan(config)
        for is_telemetry, key, uuid, parts, type_name in keys:
            raw = values.get(uuid)
            if raw is None:
                continue
            try:
                value = evaluate(parts, raw)
                if type_name and type_name not in STRING_TYPES:
                    value = cast(value, type_name)
                elif isinstance(value, str):
                    value = device_text(value)  # as upstream: trimmed, and an empty one is not sent
                    if value is None:
                        continue
                elif type_name:
                    value = cast(value, type_name)
                (telemetry if is_telemetry else attributes)[key] = value
            except (ValueError, CastError) as e:
                failures.append((key, str(e)))
        if not telemetry and not attributes:
            return None, failures
        converted = {"deviceName": config["name"], "deviceType": config.get("deviceType", "default"),
                     "telemetry": [{"ts": ts, "values": telemetry}] if telemetry else [],
                     "attributes": attributes}
        if strategy is not None:
            converted["reportStrategy"] = strategy
        return converted, failures
