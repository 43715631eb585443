"""Uplink converter of the simulator example: one reading -> ThingsBoard format (pure)."""
from thingsboard_gateway.connectors.converter import Converter


class SimulatorUplinkConverter(Converter):
    """data: {"ts": ms, "values": {key: value}}; config: the device's simulator config."""

    def convert(self, config, data):
        values = {key: round(value, 2) if isinstance(value, float) else value
                  for key, value in data["values"].items()}
        return {
            "deviceName": config["name"],
            "deviceType": config.get("type", "default"),
            "telemetry": [{"ts": data["ts"], "values": values}],
            "attributes": dict(config.get("attributes") or {}),
        }
