"""Uplink converters of the MQTT connector: JSON and bytes payloads -> ThingsBoard format.

Both compile their config once (expressions, regexes) and are pure afterwards:
`convert_detailed(topic, payload)` returns the converted data (a list: a JSON array
payload gives one entry per element) and every extraction failure, named. `convert`
returns the data only (the Converter API).
"""
import time
from typing import Any, Dict, List, Optional, Tuple

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.connectors.converter import Converter
from thingsboard_gateway.conversion.casting import cast
from thingsboard_gateway.conversion.expression import Template, compile_regex, compile_template
from thingsboard_gateway.conversion.mapping import (ChangeFilter, Failure, compile_datapoints,
                                                    evaluate_datapoints)
from thingsboard_gateway.conversion.timestamps import to_millis

SOURCES = ("message", "topic", "constant")


class NameSource(object):
    """Where a device name or type comes from: the message (template), the topic
    (regular expression) or a constant."""

    def __init__(self, source, expression, file, path):
        if source not in SOURCES:
            raise ConfigError(file, path + "Source", "expected one of message, topic, constant, got %r" % (source,))
        self.source = source
        self.text = expression
        if source == "topic":
            self.regex = compile_regex(expression, file, path)
        elif source == "message":
            self.template = compile_template(expression, file, path)
        elif not isinstance(expression, str):
            raise ConfigError(file, path, "expected a string")

    def resolve(self, topic, data, evaluate):
        # type: (str, Any, Any) -> Tuple[Optional[str], Optional[str]]
        """(value, None) or (None, what found nothing)."""
        if self.source == "constant":
            return self.text, None
        if self.source == "topic":
            match = self.regex.search(topic)
            return (match.group(0), None) if match and match.group(0) else (None, "topic expression %r" % self.text)
        value, missing = evaluate(self.template, data)
        if missing is not None or value in (None, ""):
            return None, missing or self.text
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value).decode("utf-8", errors="replace")
        return (value if isinstance(value, str) else str(value)), None


def device_sources(config, file, path):
    # type: (Dict[str, Any], str, str) -> Tuple[NameSource, NameSource]
    """Device name and type sources from the new (`deviceInfo`) or old upstream keys."""
    info = config.get("deviceInfo")
    if isinstance(info, dict):
        name = NameSource(info.get("deviceNameExpressionSource", "message"), info.get("deviceNameExpression"),
                          file, path + ".deviceInfo.deviceNameExpression")
        profile_source = info.get("deviceProfileExpressionSource", "constant")
        profile = NameSource(profile_source, info.get("deviceProfileExpression", "default"),
                             file, path + ".deviceInfo.deviceProfileExpression")
        return name, profile
    if "deviceNameJsonExpression" in config:
        name = NameSource("message", config["deviceNameJsonExpression"], file, path + ".deviceNameJsonExpression")
    elif "deviceNameTopicExpression" in config:
        name = NameSource("topic", config["deviceNameTopicExpression"], file, path + ".deviceNameTopicExpression")
    else:
        raise ConfigError(file, path + ".deviceInfo", "required: deviceInfo (or deviceNameJsonExpression / "
                                                      "deviceNameTopicExpression)")
    if "deviceTypeJsonExpression" in config:
        profile = NameSource("message", config["deviceTypeJsonExpression"], file, path + ".deviceTypeJsonExpression")
    elif "deviceTypeTopicExpression" in config:
        profile = NameSource("topic", config["deviceTypeTopicExpression"], file, path + ".deviceTypeTopicExpression")
    else:
        profile = NameSource("constant", "default", file, path)
    return name, profile


class MappedConverter(Converter):
    """The parts shared by the JSON and bytes converters: device, datapoints, ts, changes."""

    def __init__(self, config, file="mqtt.json", path="converter"):
        super(MappedConverter, self).__init__(config)
        self.name_source, self.type_source = device_sources(config, file, path)
        self.attributes = compile_datapoints(config.get("attributes"), "attributes", file, path + ".attributes")
        self.timeseries = compile_datapoints(config.get("timeseries"), "timeseries", file, path + ".timeseries")
        ts_field = config.get("tsField")
        self.ts_field = compile_template(ts_field if "${" in str(ts_field) else "${%s}" % ts_field, file,
                                         path + ".tsField") if ts_field else None
        self.dayfirst = bool(config.get("dayfirst", False))
        self.changes = ChangeFilter() if config.get("sendDataOnlyOnChange") else None

    def evaluate(self, template, data):
        # type: (Template, Any) -> Tuple[Any, Optional[str]]
        return template.evaluate(data)

    cast = staticmethod(cast)

    def convert_one(self, topic, data, failures, now_ms):
        # type: (str, Any, List[Failure], int) -> Optional[Dict[str, Any]]
        name, missing = self.name_source.resolve(topic, data, self.evaluate)
        if name is None:
            failures.append(Failure("device", "deviceName", self.name_source.text, "%s found nothing" % missing))
            return None
        device_type, missing = self.type_source.resolve(topic, data, self.evaluate)
        if device_type is None:
            failures.append(Failure("device", "deviceType", self.type_source.text, "%s found nothing" % missing))
            device_type = "default"
        ts = now_ms
        if self.ts_field is not None:
            raw, missing = self.evaluate(self.ts_field, data)
            try:
                ts = to_millis(raw, self.dayfirst) if missing is None else now_ms
            except ValueError as e:
                failures.append(Failure("ts", "ts", self.ts_field.source, str(e)))
            if missing is not None:
                failures.append(Failure("ts", "ts", self.ts_field.source, "%s found nothing" % missing))
        attributes = evaluate_datapoints(self.attributes, data, failures, self.evaluate, self.cast)
        telemetry = evaluate_datapoints(self.timeseries, data, failures, self.evaluate, self.cast)
        if self.changes is not None:
            attributes = self.changes.changed(name, "attributes", attributes)
            telemetry = self.changes.changed(name, "timeseries", telemetry)
        return {"deviceName": name, "deviceType": device_type,
                "telemetry": [{"ts": ts, "values": telemetry}] if telemetry else [], "attributes": attributes}

    def convert(self, config, data):
        return self.convert_detailed(config, data)[0]


class JsonUplinkConverter(MappedConverter):
    """`"type": "json"`: payload is JSON (an object, or an array of objects)."""

    def convert_detailed(self, topic, data, now_ms=None):
        # type: (str, Any, Optional[int]) -> Tuple[List[Dict[str, Any]], List[Failure]]
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        failures = []  # type: List[Failure]
        items = data if isinstance(data, list) else [data]
        out = []
        for item in items:
            converted = self.convert_one(topic, item, failures, now_ms)
            if converted is not None:
                out.append(converted)
        return out, failures


class BytesUplinkConverter(MappedConverter):
    """`"type": "bytes"`: expressions are slices of the payload (`[0:4]`, `[4:]`, `[:]`).

    A slice's bytes are decoded as UTF-8 text and cast to the key's type; `raw` gives
    them as a hex string. Expressions may mix text and slices ("Device ${[0:2]}")."""

    def evaluate(self, template, data):
        # type: (Template, Any) -> Tuple[Any, Optional[str]]
        source = template.source.strip()
        if _is_slice(source):
            return _slice(data, source), None
        if "${" in source:
            parts = []
            for part in template.parts:
                if isinstance(part, str):
                    parts.append(part)
                else:
                    inner = part.text[2:-1].strip()
                    if not _is_slice(inner):
                        return None, part.text
                    parts.append(_text(_slice(data, inner)))
            return "".join(parts), None
        return source, None

    cast = staticmethod(lambda value, type_name: cast_bytes(value, type_name))

    def convert_detailed(self, topic, data, now_ms=None):
        # type: (str, bytes, Optional[int]) -> Tuple[List[Dict[str, Any]], List[Failure]]
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        failures = []  # type: List[Failure]
        converted = self.convert_one(topic, data, failures, now_ms)
        return ([converted] if converted is not None else []), failures


def _is_slice(text):
    if not (text.startswith("[") and text.endswith("]")):
        return False
    pieces = text[1:-1].split(":")
    return len(pieces) in (1, 2) and all(p.strip().lstrip("-").isdigit() or not p.strip() for p in pieces)


def _slice(data, text):
    pieces = [p.strip() for p in text[1:-1].split(":")]
    if len(pieces) == 1:
        index = int(pieces[0])
        return data[index:index + 1 or None]
    start = int(pieces[0]) if pieces[0] else None
    end = int(pieces[1]) if pieces[1] else None
    return data[start:end]


def _text(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def cast_bytes(value, type_name):
    """Bytes slices cast by type: raw -> hex string, others via their UTF-8 text."""
    if isinstance(value, (bytes, bytearray)):
        if type_name == "raw":
            return bytes(value).hex()
        value = _text(value)
    return cast(value, type_name)
