"""A custom MQTT uplink converter that never returns, once per process, for a payload with
"hang": true (a converter stuck in a device library or an endless loop); otherwise
{"serialNumber": name, "seq": n} -> telemetry seq. The supervisor must restart its
connector while the others keep delivering."""
import json
import threading

from thingsboard_gateway.connectors.converter import Converter

_HUNG = []
_NEVER = threading.Event()


class HangingConverter(Converter):
    def convert(self, topic, data):
        body = json.loads(data)
        if body.get("hang") and not _HUNG:
            _HUNG.append(body["seq"])
            _NEVER.wait()
        return {"deviceName": body["serialNumber"], "deviceType": "default",
                "telemetry": [{"values": {"seq": body["seq"]}}]}
