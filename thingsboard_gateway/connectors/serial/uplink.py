"""Pure parts of the serial uplink: a byte stream cut into frames, a frame cut into keys.

Frames (`Framer`): a frame ends with the device's delimiter (upstream: "\\n") or is
`frameLength` bytes long. A frame longer than maxFrameLength is counted and skipped up to
its next delimiter, so a line buffer never grows past that bound.

Keys (`SerialUplinkConverter`), as upstream's serial example: each telemetry/attribute
entry takes a piece of the frame (without its delimiter): `untilDelimiter` (the part
before it), `fromDelimiter` (the part after it), then `toByte` (exclusive; -1 = to the
end) and `fromByte`; the piece is decoded as UTF-8 and cast to the entry's `type`.
"""
import time
from typing import Any, Dict, List, Optional, Tuple

from thingsboard_gateway.connectors.converter import Converter
from thingsboard_gateway.conversion.casting import CastError, cast


class Framer(object):
    """Cuts a byte stream into frames; bounded. Not thread-safe (one port thread owns it)."""

    def __init__(self, delimiter=b"\n", length=None, max_length=4096):
        # type: (bytes, Optional[int], int) -> None
        self.delimiter = delimiter
        self.length = length
        self.max_length = max(max_length, length or 0)
        self._buffer = bytearray()
        self._skipping = False  # inside an over-long frame: drop bytes up to its delimiter
        self.overlong = 0

    def feed(self, data):
        # type: (bytes) -> List[bytes]
        """The complete frames in `data` (and what was buffered before), without delimiters."""
        self._buffer += data
        if self.length:
            count = len(self._buffer) // self.length
            frames = [bytes(self._buffer[i * self.length:(i + 1) * self.length]) for i in range(count)]
            del self._buffer[:count * self.length]
            return frames
        frames = []
        start = 0
        while True:
            end = self._buffer.find(self.delimiter, start)
            if end < 0:
                break
            if self._skipping:
                self._skipping = False
            elif end - start > self.max_length:
                self.overlong += 1
            else:
                frames.append(bytes(self._buffer[start:end]))
            start = end + len(self.delimiter)
        del self._buffer[:start]
        if len(self._buffer) > self.max_length:
            if not self._skipping:
                self.overlong += 1
            self._skipping = True
            del self._buffer[:len(self._buffer) - len(self.delimiter) + 1]  # keep a possible split delimiter
        return frames

    def pending(self):
        # type: () -> int
        """Bytes of an incomplete frame held."""
        return 0 if self._skipping else len(self._buffer)

    def take_rest(self):
        # type: () -> bytes
        """The incomplete frame held (and forget it)."""
        rest = b"" if self._skipping else bytes(self._buffer)
        self._buffer = bytearray()
        self._skipping = False
        return rest


def piece(frame, entry):
    # type: (bytes, Dict[str, Any]) -> bytes
    """The part of a frame an entry names (untilDelimiter, fromDelimiter, toByte, fromByte)."""
    data = frame
    until = entry.get("untilDelimiter")
    if until:
        data = data.split(until.encode("utf-8"), 1)[0]
    after = entry.get("fromDelimiter")
    if after:
        parts = data.split(after.encode("utf-8"), 1)
        data = parts[1] if len(parts) > 1 else b""
    to_byte = entry.get("toByte")
    if to_byte is not None and to_byte != -1:
        data = data[:to_byte]
    from_byte = entry.get("fromByte")
    if from_byte is not None:
        data = data[from_byte:]
    return data


def decode_value(data, type_name):
    # type: (bytes, str) -> Any
    """A piece of a frame as `type_name`; CastError for undecodable or uncastable bytes."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CastError("not UTF-8 text (%s)" % e.reason)
    if type_name not in ("string", "str", "raw"):
        text = text.strip()
        if not text:
            raise CastError("empty")
    return cast(text, type_name)


class SerialUplinkConverter(Converter):
    """Pure: (device config, {"frame": bytes, "ts": ms}) -> ThingsBoard data for one device."""

    def convert(self, config, data):
        return self.convert_detailed(config, data)[0]

    @staticmethod
    def convert_detailed(config, data):
        # type: (Dict[str, Any], Dict[str, Any]) -> Tuple[Optional[Dict[str, Any]], List[Tuple[str, str]]]
        """(converted or None, [(key, why it failed)])."""
        frame = data["frame"]
        failures = []  # type: List[Tuple[str, str]]
        sections = {}  # type: Dict[str, Dict[str, Any]]
        for section in ("telemetry", "attributes"):
            values = sections.setdefault(section, {})
            for entry in config.get(section) or []:
                try:
                    values[entry["key"]] = decode_value(piece(frame, entry), entry.get("type", "string"))
                except CastError as e:
                    failures.append((entry["key"], "cannot read %s: %s" % (entry.get("type", "string"), e)))
        if not sections["telemetry"] and not sections["attributes"]:
            return None, failures
        ts = data.get("ts") or int(time.time() * 1000)
        return ({"deviceName": config["name"], "deviceType": config.get("type", "default"),
                 "telemetry": [{"ts": ts, "values": sections["telemetry"]}] if sections["telemetry"] else [],
                 "attributes": sections["attributes"]}, failures)


def convert_sample(config, shown, sample):
    # type: (Any, str, Any) -> Tuple[Any, List[Tuple[str, str]]]
    """For `check --sample` and the case folders: {"deviceName" (default: the first
    device), "frame": text or "frameHex": hex, "ts": ms} -> (converted, failures)."""
    from thingsboard_gateway.config.errors import ConfigError
    from thingsboard_gateway.connectors.serial.config import load
    devices = load(config, shown)["devices"]
    if not isinstance(sample, dict) or not isinstance(sample.get("frame", sample.get("frameHex")), str):
        raise ConfigError("sample", "frame", "expected {\"frame\": text} or {\"frameHex\": hex}")
    name = sample.get("deviceName") or devices[0]["name"]
    device = next((d for d in devices if d["name"] == name), None)
    if device is None:
        raise ConfigError("sample", "deviceName", "no device named %r in %s" % (name, shown))
    try:
        frame = bytes.fromhex(sample["frameHex"]) if "frameHex" in sample else sample["frame"].encode("utf-8")
    except ValueError as e:
        raise ConfigError("sample", "frameHex", str(e))
    return SerialUplinkConverter.convert_detailed(device, {"frame": frame, "ts": sample.get("ts", 0)})
