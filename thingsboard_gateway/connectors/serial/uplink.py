"""Pure parts of the serial uplink: a byte stream cut into frames, a frame cut into keys.

Frames (`Framer`): a frame ends with the device's delimiter (upstream: "\\n") or is
`frameLength` bytes long. A frame longer than maxFrameLength is counted and skipped up to
its next delimiter, so a line buffer never grows past that bound.

Keys (`SerialUplinkConverter`), as upstream's serial example: each telemetry/attribute
entry takes a piece of the frame (without its delimiter): `untilDelimiter` (the part
before it), `fromDelimiter` (the part after it), then `toByte` (exclusive; -1 = to the
end) and `fromByte`; the piece is decoded as UTF-8 and cast to the entry's `type`.
"""
from typing import Any, Dict, List, Optional, Tuple

from thingsboard_gateway.conversion.converter import Converter
from thingsboard_gateway.conversion.report import device_strategy
from thingsboard_gateway.conversion.casting import CASTS, STRING_TYPES, CastError, device_text


class FramePiece(object):
    """One telemetry/attribute entry, compiled: which piece of a frame, cast how."""

    __slots__ = ("section", "key", "type", "until", "after", "to_byte", "from_byte", "text", "cast")

    def __init__(self, section, entry):
        # type: (str, Dict[str, Any]) -> None
        self.section = section
        self.key = entry["key"]
        self.type = entry.get("type", "string")
        self.until = entry["untilDelimiter"].encode("utf-8") if entry.get("untilDelimiter") else None
        self.after = entry["fromDelimiter"].encode("utf-8") if entry.get("fromDelimiter") else None
        to_byte = entry.get("toByte")
        self.to_byte = None if to_byte == -1 else to_byte
        self.from_byte = entry.get("fromByte")
        self.text = self.type in STRING_TYPES
        self.cast = CASTS[self.type]  # called directly: a call less per key than cast()

    def piece(self, frame):
        # type: (bytes) -> bytes
        """The part of a frame this entry names: untilDelimiter, fromDelimiter, toByte, fromByte."""
        data = frame
        if self.until is not None:
            data = data.split(self.until, 1)[0]
        if self.after is not None:
            parts = data.split(self.after, 1)
            data = parts[1] if len(parts) > 1 else b""
        if self.to_byte is not None:
            data = data[:self.to_byte]
        if self.from_byte is not None:
            data = data[self.from_byte:]
        return data

    def value(self, frame):
        # type: (bytes) -> Any
        """The entry's value in a frame: None for a string with nothing but white space
        (not sent, as upstream), CastError for undecodable or uncastable bytes; raw text
        is kept as it is."""
        try:
            text = self.piece(frame).decode("utf-8")
        except UnicodeDecodeError as e:
            raise CastError("not UTF-8 text (%s)" % e.reason)
        if self.text:
            return device_text(text)
        if self.type == "raw":
            return text
        text = text.strip()
        if not text:
            raise CastError("empty")
        return self.cast(text)  # text in: every caster raises CastError, nothing else


def decode_value(data, type_name):
    # type: (bytes, str) -> Any
    """Bytes (a whole RPC answer) as `type_name`; CastError for undecodable or uncastable bytes."""
    value = FramePiece("", {"key": "", "type": type_name}).value(data)
    return "" if value is None else value


def plan(config):
    # type: (Dict[str, Any]) -> List[FramePiece]
    return [FramePiece(section, entry) for section in ("telemetry", "attributes") for entry in config.get(section) or []]


class SerialUplinkConverter(Converter):
    """Pure: (device config, {"frame": bytes, "ts": ms}) -> ThingsBoard data for one device.
    A device's keys are compiled at its first frame."""

    def __init__(self, config=None):
        super(SerialUplinkConverter, self).__init__(config)
        self._plans = {}  # type: Dict[int, Tuple[Dict[str, Any], List[FramePiece], Any]]

    def convert(self, config, data):
        return self.convert_detailed(config, data)[0]

    def convert_detailed(self, config, data):
        # type: (Dict[str, Any], Dict[str, Any]) -> Tuple[Optional[Dict[str, Any]], List[Tuple[str, str]]]
        """(converted or None, [(key, why it failed)])."""
        cached = self._plans.get(id(config))
        if cached is None or cached[0] is not config:
            cached = self._plans[id(config)] = (config, plan(config), device_strategy(config))
        frame = data["frame"]
        failures = []  # type: List[Tuple[str, str]]
        telemetry, attributes = {}, {}  # type: Dict[str, Any], Dict[str, Any]
        for key in cached[1]:
            try:
                value = key.value(frame)
                if value is not None:
                    (telemetry if key.section == "telemetry" else attributes)[key.key] = value
            except CastError as e:
                failures.append((key.key, "cannot read %s: %s" % (key.type, e)))
        if not telemetry and not attributes:
            return None, failures
        ts = data["ts"]  # the caller's clock: converters read none
        converted = {"deviceName": config["name"], "deviceType": config.get("type", "default"),
                     "telemetry": [{"ts": ts, "values": telemetry}] if telemetry else [], "attributes": attributes}
        if cached[2] is not None:
            converted["reportStrategy"] = cached[2]
        return converted, failures
