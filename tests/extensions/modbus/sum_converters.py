"""Test extensions for the Modbus connector's custom converter keys."""
from thingsboard_gateway.connectors.converter import Converter


class SumUplinkConverter(Converter):
    """Reports the sum of every register and coil read, as telemetry `sum`."""

    def convert(self, config, data):
        total = sum(int(v) for read in data["reads"] for v in read["values"])
        return {"deviceName": config["deviceName"], "deviceType": "summed",
                "telemetry": [{"ts": data["ts"], "values": {"sum": total}}], "attributes": {}}


class DoubleDownlinkConverter(Converter):
    """Writes twice the value it is given, as one holding register."""

    def convert(self, config, data):
        return [("write_register", data["tag"]["address"], int(data["value"]) * 2)]
