"""Example custom uplink converter for the REST connector (upstream's rest.json names it).

It gets the request's raw body (bytes) and its mapping's `converter` section; one
number from `extensionConfig` ({"key", "datatype", "fromByte", "toByte", "byteorder",
"signed", "multiplier"}) becomes telemetry of the constant device of `deviceInfo`.
"""
import time

from thingsboard_gateway.connectors.converter import Converter
from thingsboard_gateway.conversion.bytefields import field_value


class CustomRestUplinkConverter(Converter):
    def convert(self, config, data):
        field = dict(config.get("extensionConfig") or {})
        field.setdefault("type", field.get("datatype", "int"))
        body = data if isinstance(data, bytes) else str(data).encode("utf-8")
        info = config.get("deviceInfo") or {}
        return {"deviceName": info.get("deviceNameExpression", "CustomRestDevice"),
                "deviceType": info.get("deviceProfileExpression", "default"),
                "telemetry": [{"ts": int(time.time() * 1000), "values": {field["key"]: field_value(field, body)}}],
                "attributes": {}}
