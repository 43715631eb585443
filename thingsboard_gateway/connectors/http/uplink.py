"""The REST uplink converter: a request's JSON (body, or query parameters of a GET) ->
ThingsBoard data, through the shared expression engine (the MQTT connector's JSON
converter): `deviceInfo` with sources "request" or "constant", `attributes`,
`timeseries`. Pure."""
import copy
from typing import Any, Dict, List, Tuple

from thingsboard_gateway.conversion.mapped import JsonUplinkConverter


def json_converter(converter, file, path):
    # type: (Dict[str, Any], str, str) -> JsonUplinkConverter
    """The JSON converter of a mapping's `converter` section (upstream's "request" source
    is our "message" source; older files' deviceNameExpression/deviceTypeExpression too)."""
    config = copy.deepcopy(converter)
    info = config.get("deviceInfo")
    if isinstance(info, dict):
        for key in ("deviceNameExpressionSource", "deviceProfileExpressionSource"):
            if info.get(key) == "request":
                info[key] = "message"
    elif "deviceNameExpression" in config:
        config["deviceInfo"] = {"deviceNameExpressionSource": "message",
                                "deviceNameExpression": config["deviceNameExpression"],
                                "deviceProfileExpressionSource": "message",
                                "deviceProfileExpression": config.get("deviceTypeExpression", "default")}
    if "timeseries" not in config and "telemetry" in config:
        config["timeseries"] = config["telemetry"]
    return JsonUplinkConverter(config, file, path)


def mapping_converter(converter, kind, file, path):
    # type: (Dict[str, Any], str, str, str) -> Any
    """A mapping's converter: the JSON converter, or (type custom) the class named by
    `extension` from <extensions dir>/<kind>/, made with the converter section. REST and
    request share this; a missing class is one ConfigError."""
    if converter.get("type") == "custom":
        from thingsboard_gateway.connectors.registry import load_converter
        return load_converter(converter.get("extension", ""), kind, file, path + ".extension", converter)
    return json_converter(converter, file, path)
