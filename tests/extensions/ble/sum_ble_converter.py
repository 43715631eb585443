"""A custom BLE uplink converter for the tests: the sum of every byte it is given."""
from thingsboard_gateway.connectors.converter import Converter


class SumBleConverter(Converter):
    def convert(self, config, data):
        total = sum(sum(value) for value in data["values"].values())
        return {"deviceName": config["name"], "deviceType": "summed",
                "telemetry": [{"ts": data["ts"], "values": {"byteSum": total}}], "attributes": {}}
