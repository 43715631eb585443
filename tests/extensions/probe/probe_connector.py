"""Test connector: one device; exercises RPC replies, attribute requests and updates."""
from thingsboard_gateway.connectors.connector import Connector


class ProbeConnector(Connector):
    """Device "Probe Device". On open it requests the shared attribute `targetTemp` and
    reports the answer as telemetry; RPC `echo` replies with its params; an attribute
    update is reported back as telemetry `updated_<key>`; `send` RPC sends `count`
    telemetry records with seq numbers."""

    def open(self):
        self.stop_event.clear()
        self.gateway.add_device("Probe Device", "probe", self)
        self.start_thread(self._run)

    def _run(self):
        self.gateway.request_attributes("Probe Device", ["targetTemp"], self._on_attributes)
        self.stop_event.wait()

    def _on_attributes(self, response):
        self.gateway.send_to_storage(self.name, self.id, {"deviceName": "Probe Device", "deviceType": "probe",
                                                          "telemetry": [{"targetTemp": response.get("value")}]})

    def close(self):
        self.stop_event.set()
        self.join_threads(5)

    def server_side_rpc_handler(self, content):
        data = content["data"]
        if data["method"] == "echo":
            self.gateway.send_rpc_reply(content["device"], data["id"], {"echo": data.get("params")})
        else:
            super(ProbeConnector, self).server_side_rpc_handler(content)

    def on_attributes_update(self, content):
        values = {"updated_" + k: v for k, v in content["data"].items()}
        self.gateway.send_to_storage(self.name, self.id, {"deviceName": content["device"], "telemetry": [values]})
