"""requestsMapping of the MQTT connector, compiled once (pure parts).

connectRequests / disconnectRequests: a device message announces a device.
attributeRequests: a device asks for attributes; the answer is published back.
attributeUpdates: platform attribute changes -> a message to the device.
serverSideRpc: platform RPC -> a request message; twoWay waits for a response message.
"""
import json
from typing import Any, Dict, List, Optional, Pattern, Tuple

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.conversion.mapped import NameSource, device_sources
from thingsboard_gateway.conversion.expression import Template, compile_regex, compile_template


def render(template, context):
    # type: (Template, Dict[str, Any]) -> Any
    """A template filled from `context`; None when something was not there."""
    value, missing = template.evaluate(context)
    return None if missing is not None else value


def payload_of(value):
    # type: (Any) -> bytes
    """What to publish for a rendered value: text as is, anything else as JSON."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


class DeviceRequest(object):
    """A connect or disconnect request: a topic filter and where the device name is."""

    def __init__(self, entry, file, path):
        if not isinstance(entry, dict) or "topicFilter" not in entry:
            raise ConfigError(file, path + ".topicFilter", "required key is missing")
        self.topic_filter = entry["topicFilter"]
        config = dict(entry)
        if isinstance(config.get("deviceInfo"), dict):
            config["deviceInfo"] = dict(config["deviceInfo"])
            config["deviceInfo"].setdefault("deviceProfileExpressionSource", "constant")
        self.name, self.type = device_sources(config, file, path)


class AttributeRequest(DeviceRequest):
    """A device asks for attributes on topicFilter; the answer goes to topicExpression."""

    def __init__(self, entry, file, path):
        super(AttributeRequest, self).__init__(entry, file, path)
        source = entry.get("attributeNameExpressionSource", "message")
        expression = entry.get("attributeNameExpression", entry.get("attributeNameJsonExpression"))
        if expression is None:
            raise ConfigError(file, path + ".attributeNameExpression", "required key is missing")
        self.attribute = NameSource(source, expression, file, path + ".attributeNameExpression")
        self.topic = compile_template(entry.get("topicExpression"), file, path + ".topicExpression")
        self.value = compile_template(entry.get("valueExpression", "${attributeValue}"), file,
                                      path + ".valueExpression")
        self.retain = bool(entry.get("retain", False))
        self.shared = entry.get("scope", "shared") != "client"


class AttributeUpdate(object):
    """Platform attribute change -> message to the device."""

    def __init__(self, entry, file, path):
        self.device_filter = _regex(entry, "deviceNameFilter", file, path)
        self.attribute_filter = _regex(entry, "attributeFilter", file, path)
        self.topic = compile_template(entry.get("topicExpression"), file, path + ".topicExpression")
        self.value = compile_template(entry.get("valueExpression", "${attributeValue}"), file,
                                      path + ".valueExpression")
        self.retain = bool(entry.get("retain", False))

    def messages(self, device, data):
        # type: (str, Dict[str, Any]) -> List[Tuple[str, bytes]]
        out = []
        if not self.device_filter.fullmatch(device):
            return out
        for key, value in data.items():
            if not self.attribute_filter.fullmatch(key):
                continue
            context = {"deviceName": device, "attributeKey": key, "attributeValue": value}
            topic, payload = render(self.topic, context), render(self.value, context)
            if topic is not None and payload is not None:
                out.append((str(topic), payload_of(payload)))
        return out


class RpcRoute(object):
    """Platform RPC -> request topic/payload; twoWay: the response topic and timeout."""

    def __init__(self, entry, file, path):
        self.device_filter = _regex(entry, "deviceNameFilter", file, path)
        self.method_filter = _regex(entry, "methodFilter", file, path)
        self.request_topic = compile_template(entry.get("requestTopicExpression"), file,
                                              path + ".requestTopicExpression")
        response = entry.get("responseTopicExpression")
        kind = entry.get("type") or ("twoWay" if response else "oneWay")
        if kind not in ("oneWay", "twoWay"):
            raise ConfigError(file, path + ".type", "expected \"oneWay\" or \"twoWay\", got %r" % kind)
        if kind == "twoWay" and not response:
            raise ConfigError(file, path + ".responseTopicExpression", "required for a twoWay RPC")
        self.two_way = kind == "twoWay"
        self.response_topic = compile_template(response, file, path + ".responseTopicExpression") \
            if self.two_way else None
        self.response_qos = int(entry.get("responseTopicQoS", 1))
        self.timeout = float(entry.get("responseTimeout", 10000)) / 1000.0
        self.value = compile_template(entry.get("valueExpression", "${params}"), file, path + ".valueExpression")

    def matches(self, device, method):
        # type: (str, str) -> bool
        return bool(self.device_filter.fullmatch(device) and self.method_filter.fullmatch(method or ""))

    def request(self, device, request_id, method, params):
        # type: (str, Any, str, Any) -> Tuple[Optional[str], Optional[bytes], Optional[str]]
        """(request topic, payload, response topic or None); None topic if rendering failed."""
        context = {"deviceName": device, "requestId": request_id, "methodName": method, "params": params}
        topic, value = render(self.request_topic, context), render(self.value, context)
        response = str(render(self.response_topic, context)) if self.two_way else None
        if topic is None or value is None:
            return None, None, None
        return str(topic), payload_of(value), response


def _regex(entry, key, file, path):
    # type: (Dict[str, Any], str, str, str) -> Pattern
    return compile_regex(entry.get(key, ".*"), file, path + "." + key)


class Requests(object):
    """All of requestsMapping, compiled."""

    def __init__(self, mapping, file):
        # type: (Dict[str, Any], str) -> None
        def each(kind, cls):
            return [cls(entry, file, "requestsMapping.%s[%d]" % (kind, i))
                    for i, entry in enumerate(mapping.get(kind) or [])]
        self.connect = each("connectRequests", DeviceRequest)
        self.disconnect = each("disconnectRequests", DeviceRequest)
        self.attribute_requests = each("attributeRequests", AttributeRequest)
        self.attribute_updates = each("attributeUpdates", AttributeUpdate)
        self.rpc = each("serverSideRpc", RpcRoute)
        self.incoming = self.connect + self.disconnect + self.attribute_requests  # type: List[DeviceRequest]

    def topic_filters(self):
        # type: () -> List[str]
        return [r.topic_filter for r in self.incoming]

    def rpc_route(self, device, method):
        # type: (str, str) -> Optional[RpcRoute]
        return next((r for r in self.rpc if r.matches(device, method)), None)
