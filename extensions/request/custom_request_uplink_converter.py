"""Example custom uplink converter for the request connector (upstream's request.json names it).

It gets the polled response's raw body (bytes) and its mapping's `converter` section;
each entry of `extension-config` ({"key", "type", "fromByte", "toByte", "byteorder",
"signed", "multiplier"} or bits {"byteAddress", "fromBit", "toBit"}) becomes telemetry
of the device named by deviceNameJsonExpression (a constant here).
"""
import time

from thingsboard_gateway.connectors.converter import Converter
from thingsboard_gateway.conversion.bytefields import decode_fields


class CustomRequestUplinkConverter(Converter):
    def convert(self, config, data):
        body = data if isinstance(data, bytes) else str(data).encode("utf-8")
        values, failures = decode_fields(config.get("extension-config") or [], body)
        if failures and not values:
            raise ValueError("; ".join("%s: %s" % f for f in failures))
        return {"deviceName": config.get("deviceNameJsonExpression", "CustomRequestDevice"),
                "deviceType": config.get("deviceTypeJsonExpression", "default"),
                "telemetry": [{"ts": int(time.time() * 1000), "values": values}], "attributes": {}}
