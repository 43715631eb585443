"""Example custom uplink converter for the MQTT connector (upstream's example config uses it).

The payload is raw bytes; `extensionConfig` lists keys and how many bytes each takes,
in order, big-endian unsigned: {"temperature": 2, "humidity": 2, "batteryLevel": 1}.
The device name is the last topic level (`custom/sensors/<name>`).
"""
import time

from thingsboard_gateway.connectors.converter import Converter


class CustomMqttUplinkConverter(Converter):
    def convert(self, topic, data):
        values = {}
        position = 0
        for key, size in self.config.get("extensionConfig", {}).items():
            chunk = data[position:position + int(size)]
            if len(chunk) < int(size):
                raise ValueError("payload too short for %s (needs %d bytes at %d)" % (key, size, position))
            values[key] = int.from_bytes(chunk, "big")
            position += int(size)
        return {"deviceName": topic.rsplit("/", 1)[-1], "deviceType": "default",
                "telemetry": [{"ts": int(time.time() * 1000), "values": values}], "attributes": {}}
