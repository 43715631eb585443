"""The mapping converter that MQTT (json and bytes payloads) and HTTP (REST, request)
converters share: device name and type from the message, the topic/path or a constant;
attributes and timeseries by expressions; ts from `tsField` or the time the caller
gives. Compiled once from the config, pure afterwards: `convert_detailed(topic, payload,
now_ms)` returns the converted data (a list: a JSON array payload gives one entry per
element) and every extraction failure, named. `convert` (the Converter API) returns the
data only."""
import time
from typing import Any, Dict, List, Optional, Tuple

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.conversion.casting import cast
from thingsboard_gateway.conversion.converter import Converter
from thingsboard_gateway.conversion.expression import compile_regex, compile_template
from thingsboard_gateway.conversion.mapping import (Failure, compile_datapoints, evaluate_datapoints,
                                                    evaluate_template, single_field)
from thingsboard_gateway.conversion.report import DEFAULT_PERIOD_MS, ON_CHANGE, Strategy, device_strategy
from thingsboard_gateway.conversion.timestamps import to_millis

SOURCES = ("message", "topic", "constant")


class NameSource(object):
    """Where a device name or type comes from: the message (template), the topic
    (regular expression) or a constant."""

    field = None  # type: Optional[str]

    def __init__(self, source, expression, file, path, compiler=compile_template):
        if source not in SOURCES:
            raise ConfigError(file, path + "Source", "expected one of message, topic, constant, got %r" % (source,))
        self.source = source
        self.text = expression
        if source == "topic":
            self.regex = compile_regex(expression, file, path)
        elif source == "message":
            self.template = compiler(expression, file, path)
            self.field = single_field(self.template)  # "${name}": read directly (resolve's fast path)
        elif not isinstance(expression, str):
            raise ConfigError(file, path, "expected a string")

    def resolve(self, topic, data, evaluate=None):
        # type: (str, Any, Any) -> Tuple[Optional[str], Optional[str]]
        """(value, None) or (None, why not). A name is text: a number becomes its text, an
        object or a list found by the expression is refused (it is no name).
        evaluate(template, data): how expressions are evaluated; None: the templates' own
        evaluate, with a plain "${name}" read directly."""
        if self.source == "constant":
            return self.text, None
        if evaluate is None:
            if self.field is not None and isinstance(data, dict):
                value = data.get(self.field)
                if isinstance(value, str) and value:  # the common case; anything else as below
                    return value, None
            evaluate = evaluate_template
        if self.source == "topic":
            match = self.regex.search(topic)
            if match and match.group(0):
                return match.group(0), None
            return None, "topic expression %r found nothing" % self.text
        value, missing = evaluate(self.template, data)
        if missing is not None or value in (None, ""):
            return None, "%s found nothing" % (missing or self.text)
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value).decode("utf-8", errors="replace")
        if isinstance(value, (dict, list)):
            return None, "%s found a JSON %s, not text" % (self.text, "object" if isinstance(value, dict) else "array")
        return (value if isinstance(value, str) else str(value)), None


def device_sources(config, file, path, compiler=compile_template):
    # type: (Dict[str, Any], str, str, Any) -> Tuple[NameSource, NameSource]
    """Device name and type sources from the new (`deviceInfo`) or old upstream keys."""
    info = config.get("deviceInfo")
    if isinstance(info, dict):
        name = NameSource(info.get("deviceNameExpressionSource", "message"), info.get("deviceNameExpression"),
                          file, path + ".deviceInfo.deviceNameExpression", compiler)
        profile_source = info.get("deviceProfileExpressionSource", "constant")
        profile = NameSource(profile_source, info.get("deviceProfileExpression", "default"),
                             file, path + ".deviceInfo.deviceProfileExpression", compiler)
        return name, profile
    name = _old_source(config, "Name", file, path, compiler)
    if name is None:
        raise ConfigError(file, path + ".deviceInfo", "required: deviceInfo (or deviceNameJsonExpression / "
                                                      "deviceNameTopicExpression)")
    profile = _old_source(config, "Type", file, path, compiler) or NameSource("constant", "default", file, path)
    return name, profile


def _old_source(config, what, file, path, compiler):
    # type: (Dict[str, Any], str, str, str, Any) -> Optional[NameSource]
    """The source of upstream's old `device<what>JsonExpression` (from the message, with the
    converter's compiler) or `device<what>TopicExpression` key; None when neither is set."""
    key = "device%sJsonExpression" % what
    if key in config:
        return NameSource("message", config[key], file, path + "." + key, compiler)
    key = "device%sTopicExpression" % what
    if key in config:
        return NameSource("topic", config[key], file, path + "." + key)
    return None


class MappedConverter(Converter):
    """The parts shared by the JSON and bytes converters: device, datapoints, ts, and the
    mapping's report strategies (handed on with the data)."""

    def __init__(self, config, file="mqtt.json", path="converter"):
        super(MappedConverter, self).__init__(config)
        self.name_source, self.type_source = device_sources(config, file, path, self.compile)
        self.attributes = compile_datapoints(config.get("attributes"), "attributes", file, path + ".attributes",
                                             self.compile)
        self.timeseries = compile_datapoints(config.get("timeseries"), "timeseries", file, path + ".timeseries",
                                             self.compile)
        ts_field = config.get("tsField")
        self.ts_field = compile_template(ts_field if "${" in str(ts_field) else "${%s}" % ts_field, file,
                                         path + ".tsField") if ts_field else None
        self.dayfirst = bool(config.get("dayfirst", False))
        # How convert_one evaluates: None, the plain JSON lookups read directly, unless a
        # subclass evaluates otherwise.
        self._lookup = None if type(self).evaluate is MappedConverter.evaluate else self.evaluate
        # sendDataOnlyOnChange is ON_CHANGE for the mapping (unless it has a reportStrategy):
        # the gateway's report filter keeps what was sent, not the converter.
        self.strategy = device_strategy(config, Strategy(ON_CHANGE, DEFAULT_PERIOD_MS)
                                        if config.get("sendDataOnlyOnChange") else None)

    compile = staticmethod(compile_template)
    # The time of data converted through convert() (the Converter API, which has no time
    # argument); connectors hand their own to convert_detailed and this is never read.
    wall = staticmethod(time.time)

    def evaluate(self, template, data):
        # type: (Any, Any) -> Tuple[Any, Optional[str]]
        return template.evaluate(data)

    cast = staticmethod(cast)

    def convert_one(self, topic, data, failures, now_ms):
        # type: (str, Any, List[Failure], int) -> Optional[Dict[str, Any]]
        lookup = self._lookup
        name, problem = self.name_source.resolve(topic, data, lookup)
        if name is None:
            failures.append(Failure("device", "deviceName", self.name_source.text, problem))
            return None
        device_type, problem = self.type_source.resolve(topic, data, lookup)
        if device_type is None:
            failures.append(Failure("device", "deviceType", self.type_source.text, problem))
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
        attributes = evaluate_datapoints(self.attributes, data, failures, lookup, self.cast)
        telemetry = evaluate_datapoints(self.timeseries, data, failures, lookup, self.cast)
        if not attributes and not telemetry:
            return None  # nothing to send (what failed is in `failures`)
        data = {"deviceName": name, "deviceType": device_type,
                "telemetry": [{"ts": ts, "values": telemetry}] if telemetry else [], "attributes": attributes}
        if self.strategy is not None:
            data["reportStrategy"] = self.strategy
        return data

    def convert(self, config, data):
        return self.convert_detailed(config, data)[0]

    def explain(self, topic, data):
        # type: (str, Any) -> List[Tuple[str, str, str, Any, Optional[str]]]
        """For a dry run: (section, key, expression, value, problem) of every configured
        key of one message (the first element of an array payload)."""
        item = data[0] if isinstance(data, list) and data else data
        rows = []
        for section, source in (("device", self.name_source), ("device", self.type_source)):
            value, problem = source.resolve(topic, item, self.evaluate)
            rows.append((section, "deviceName" if source is self.name_source else "deviceType", str(source.text),
                         value, problem))
        for point in self.attributes + self.timeseries:
            failures = []  # type: List[Failure]
            values = evaluate_datapoints([point], item, failures, self.evaluate, self.cast)
            key = next(iter(values), failures[0].key if failures else point.key.source)
            rows.append((point.section, key, point.value.source, values.get(key),
                         failures[0].reason if failures else None))
        return rows


class JsonUplinkConverter(MappedConverter):
    """`"type": "json"`: payload is JSON (an object, or an array of objects)."""

    def convert_detailed(self, topic, data, now_ms=None):
        # type: (str, Any, Optional[int]) -> Tuple[List[Dict[str, Any]], List[Failure]]
        now_ms = int(self.wall() * 1000) if now_ms is None else now_ms
        failures = []  # type: List[Failure]
        items = data if isinstance(data, list) else [data]
        out = []
        for item in items:
            converted = self.convert_one(topic, item, failures, now_ms)
            if converted is not None:
                out.append(converted)
        return out, failures
