"""Pure parts of the socket uplink: which device a peer is, what its message carries.

As upstream: a device is found by matching the peer's "ip:port" against its
`addressFilter` (or `address`), `*` matching anything; a key is the bytes
`[byteFrom:byteTo]` of the message (byteTo -1: to the end), NUL bytes removed, decoded
with the device's `encoding` and cast to the key's `type` (default string). An
attributeRequests entry (`"requestExpression": "${[0:3]==atr}"`) marks the messages that
ask for an attribute, whose name is `attributeNameExpression` ("[3:]").
"""
import re
from typing import Any, Dict, List, Optional, Pattern, Tuple

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.conversion.converter import Converter
from thingsboard_gateway.conversion.report import device_strategy
from thingsboard_gateway.conversion.casting import CASTS, STRING_TYPES, CastError, device_text

_SLICE = r"\[\s*(-?\d*)\s*(?::\s*(-?\d*)\s*)?\]"
_REQUEST = re.compile(r"^\$\{\s*" + _SLICE + r"\s*==\s*(.*?)\s*\}$")
_NAME = re.compile(r"^\s*" + _SLICE + r"\s*$")


def address_pattern(text):
    # type: (str) -> Pattern[str]
    """"127.0.0.1:*" -> a regex matching whole "ip:port" texts; `*` is any run of characters."""
    return re.compile("^" + ".*".join(re.escape(part) for part in text.split("*")) + "$")


def _slice(start, end, single):
    # type: (str, Optional[str], bool) -> slice
    if single:
        index = int(start)
        return slice(index, index + 1 or None)
    return slice(int(start) if start else None, int(end) if end else None)


class AttributeRequest(object):
    """One attributeRequests entry, compiled."""

    def __init__(self, entry, file, path):
        # type: (Dict[str, Any], str, str) -> None
        match = _REQUEST.match(entry["requestExpression"])
        if not match:
            raise ConfigError(file, path + ".requestExpression", "expected \"${[from:to]==text}\", got %r"
                              % entry["requestExpression"])
        self.when = _slice(match.group(1), match.group(2), ":" not in entry["requestExpression"].split("==")[0])
        self.equals = match.group(3)
        name = _NAME.match(entry["attributeNameExpression"])
        if not name:
            raise ConfigError(file, path + ".attributeNameExpression", "expected a slice like \"[3:]\", got %r"
                              % entry["attributeNameExpression"])
        self.name = _slice(name.group(1), name.group(2), ":" not in entry["attributeNameExpression"])
        self.shared = entry.get("type", "shared") == "shared"

    def attribute(self, data, encoding):
        # type: (bytes, str) -> Optional[str]
        """The attribute a message asks for, or None when it is no request of this kind."""
        try:
            if data[self.when].decode(encoding) != self.equals:
                return None
            return data[self.name].decode(encoding).strip() or None
        except UnicodeDecodeError:
            return None


class ByteField(object):
    """One telemetry/attribute entry, compiled."""

    __slots__ = ("section", "key", "type", "start", "end", "text", "cast")

    def __init__(self, section, entry):
        # type: (str, Dict[str, Any]) -> None
        self.section = section
        self.key = entry["key"]
        self.type = entry.get("type", "string")
        self.start = entry.get("byteFrom", 0)
        end = entry.get("byteTo", -1)
        self.end = None if end == -1 else end
        self.text = self.type in STRING_TYPES
        self.cast = CASTS[self.type]  # called directly: a call less per key than cast()

    def value(self, data, encoding):
        # type: (bytes, str) -> Any
        """The value, or None for a string with nothing but white space (not sent, as
        upstream); UnicodeDecodeError or CastError when the bytes are no such value (text
        in: every caster raises CastError, nothing else). Raw text is kept as it is."""
        text = data[self.start:self.end].replace(b"\x00", b"").decode(encoding)
        if self.text:
            return device_text(text)
        return self.cast(text if self.type == "raw" else text.strip())


class DeviceConverter(object):
    """One device's keys, compiled: convert(message bytes, ts ms) -> (data or None, failures)."""

    __slots__ = ("name", "type", "encoding", "keys", "strategy")

    def __init__(self, config):
        # type: (Dict[str, Any]) -> None
        self.name = config["deviceName"]
        self.type = config.get("deviceType", "default")
        self.encoding = config.get("encoding", "utf-8")
        self.keys = [ByteField(section, entry) for section in ("telemetry", "attributes")
                     for entry in config.get(section) or []]
        self.strategy = device_strategy(config)

    def convert(self, message, ts):
        # type: (bytes, int) -> Tuple[Optional[Dict[str, Any]], List[Tuple[str, str]]]
        encoding = self.encoding
        failures = []  # type: List[Tuple[str, str]]
        telemetry, attributes = {}, {}  # type: Dict[str, Any], Dict[str, Any]
        for key in self.keys:
            try:
                value = key.value(message, encoding)
                if value is not None:
                    (telemetry if key.section == "telemetry" else attributes)[key.key] = value
            except UnicodeDecodeError as e:
                failures.append((key.key, "not %s text (%s)" % (encoding, e.reason)))
            except CastError as e:
                failures.append((key.key, "cannot read %s: %s" % (key.type, e)))
        if not telemetry and not attributes:
            return None, failures
        converted = {"deviceName": self.name, "deviceType": self.type,
                     "telemetry": [{"ts": ts, "values": telemetry}] if telemetry else [],
                     "attributes": attributes}
        if self.strategy is not None:
            converted["reportStrategy"] = self.strategy
        return converted, failures


class SocketUplinkConverter(Converter):
    """Pure: (device config, {"data": bytes, "ts": ms}) -> ThingsBoard data for one device
    (the Converter API over DeviceConverter, which the connector uses directly)."""

    def convert(self, config, data):
        return self.convert_detailed(config, data)[0]

    @staticmethod
    def convert_detailed(config, data):
        # type: (Dict[str, Any], Dict[str, Any]) -> Tuple[Optional[Dict[str, Any]], List[Tuple[str, str]]]
        return DeviceConverter(config).convert(data["data"], data.get("ts") or 0)
