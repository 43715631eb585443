"""Uplink converters of the MQTT connector: JSON payloads (the shared mapping converter,
conversion/mapped.py) and bytes payloads (slices of the payload) -> ThingsBoard format.
"""
import re
from typing import Any, Dict, List, Optional, Tuple

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.conversion.casting import cast
from thingsboard_gateway.conversion.mapped import MappedConverter
from thingsboard_gateway.conversion.mapping import Failure


class BytesUplinkConverter(MappedConverter):
    """`"type": "bytes"`: expressions are slices of the payload (`[0:4]`, `[4:]`, `[:]`).

    As upstream: a slice's bytes are decoded as UTF-8 text for every type (`raw` too) and
    cast to the key's type; with `"hexMode": true` every slice is its hex text instead
    (integer and double types read that hex as a number). Expressions may mix text and
    slices ("Device ${[0:2]}")."""

    def __init__(self, config, file="mqtt.json", path="converter"):
        super(BytesUplinkConverter, self).__init__(config, file, path)
        hex_mode = bool(config.get("hexMode", False))
        self.cast = lambda value, type_name: cast_bytes(value, type_name, hex_mode)

    @staticmethod
    def compile(source, file, path):
        return SliceTemplate.parse(source, file, path)

    def evaluate(self, template, data):
        # type: (SliceTemplate, Any) -> Tuple[Any, Optional[str]]
        return template.evaluate(data), None


    def convert_detailed(self, topic, data, now_ms=None):
        # type: (str, bytes, Optional[int]) -> Tuple[List[Dict[str, Any]], List[Failure]]
        now_ms = int(self.wall() * 1000) if now_ms is None else now_ms
        failures = []  # type: List[Failure]
        converted = self.convert_one(topic, data, failures, now_ms)
        return ([converted] if converted is not None else []), failures


_SLICE = re.compile(r"^\[\s*(-?\d*)\s*(?:(:)\s*(-?\d*)\s*)?\]$")


class SliceTemplate(object):
    """A bytes expression: `[0:4]` alone gives the bytes; text with `${[a:b]}` parts gives
    text (slices decoded as UTF-8); anything else is a constant."""

    def __init__(self, source, parts):
        self.source = source
        self.parts = parts  # str or slice

    @classmethod
    def parse(cls, source, file, path):
        if not isinstance(source, str):
            raise ConfigError(file, path, "expected a slice expression like \"[0:4]\"")
        whole = _SLICE.match(source.strip())
        if whole:
            return cls(source, [_to_slice(whole)])
        parts = []  # type: List[Any]
        position = 0
        for match in re.finditer(r"\$\{([^}]*)\}", source):
            parts.append(source[position:match.start()])
            inner = _SLICE.match(match.group(1).strip())
            if not inner:
                raise ConfigError(file, path, "expected a slice like [0:4] inside ${...} at column %d of %r"
                                  % (match.start() + 3, source))
            parts.append(_to_slice(inner))
            position = match.end()
        parts.append(source[position:])
        return cls(source, [p for p in parts if p != ""])

    def evaluate(self, data):
        if len(self.parts) == 1 and isinstance(self.parts[0], slice):
            return data[self.parts[0]]
        return "".join(p if isinstance(p, str) else _text(data[p]) for p in self.parts)


def _to_slice(match):
    start, colon, end = match.group(1), match.group(2), match.group(3)
    if not colon:  # [n]: one byte
        index = int(start)
        return slice(index, index + 1 or None)
    return slice(int(start) if start else None, int(end) if end else None)


def _text(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def cast_bytes(value, type_name, hex_mode=False):
    """A bytes slice cast by type via its UTF-8 text, or (hex_mode) via its hex text:
    integer and double types then read the hex as a number ("01f4" -> 500)."""
    if isinstance(value, (bytes, bytearray)):
        if not hex_mode:
            return cast(_text(value), type_name)
        text = bytes(value).hex()
        if type_name in ("integer", "int", "long", "double", "float") and text:
            number = int(text, 16)
            return cast(number, type_name)
        return cast(text, type_name)
    return cast(value, type_name)
