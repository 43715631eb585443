"""Custom serial converters for the tests: the frame's text reversed goes up; a write is
the attribute's value upper-cased and framed by "<" ">"."""
from thingsboard_gateway.connectors.converter import Converter


class ReversedUplink(Converter):
    def convert(self, config, data):
        return {"deviceName": config["name"], "deviceType": "reversed", "attributes": {},
                "telemetry": [{"values": {"text": data.decode("utf-8")[::-1]}}]}


class ShoutingDownlink(Converter):
    def convert(self, config, data):
        return "<%s>\n" % str(data.get("value", data.get("params"))).upper()
