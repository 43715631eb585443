"""ModbusConnector: one DeviceWorker (thread) per endpoint polls each slave on it on its
own period (session.py), so a host that is down never delays the others; RPCs and
attribute writes run on the endpoint's thread too (the pymodbus client is not
thread-safe). With a `slave` section the gateway also serves as a Modbus slave
(server.py)."""
import logging
from typing import Any, Dict, List, Optional

from thingsboard_gateway.connectors.kit import PollingConnector
from thingsboard_gateway.connectors.modbus import config as modbus_config
from thingsboard_gateway.connectors.modbus.server import ServerSession
from thingsboard_gateway.connectors.modbus.session import EndpointSession, SlavePoller, endpoint_key
from thingsboard_gateway.connectors.registry import load_converter
from thingsboard_gateway.runtime.backoff import AttemptsBackoff

log = logging.getLogger(__name__)


class ModbusConnector(PollingConnector):
    """Upstream-compatible Modbus master (see README.md beside this file)."""

    default_file = "modbus.json"

    @staticmethod
    def load_config(config, file, warnings=None):
        config = modbus_config.load(config, file, warnings)
        for index, slave in enumerate(config["master"]["slaves"]):
            for key in ("converter", "uplink_converter", "downlink_converter"):
                if slave.get(key):  # a missing class is a one-line error at check and start-up
                    load_converter(slave[key], "modbus", file, "master.slaves[%d].%s" % (index, key), slave)
        return config

    @staticmethod
    def describe_config(config):
        slaves = config["master"]["slaves"]
        text = "%d slave(s): %s" % (len(slaves), ", ".join(
            "%s (%s, %d tags every %d ms)" % (s["deviceName"], s["type"], len(s["attributes"]) + len(s["timeseries"]),
                                             s["pollPeriod"]) for s in slaves))
        server = config.get("slave")
        if server:
            text += "; serving as unit %d on %s %s (%s%s)" % (
                server["unitId"], server["type"], server["port"], server["deviceName"],
                ", reported every %d ms" % server["pollPeriod"] if server["sendDataToThingsBoard"] else "")
        return text

    def __init__(self, gateway, config, connector_type):
        super(ModbusConnector, self).__init__(gateway, config, connector_type)
        self.endpoints = []  # type: List[EndpointSession]
        self.pollers = {}  # type: Dict[str, SlavePoller]
        self.server = None  # type: Optional[ServerSession]  the gateway as a Modbus slave

    def custom_converter(self, slave, *keys):
        # type: (Dict[str, Any], str) -> Any
        """The custom converter a slave names under the first of `keys` it has, or None."""
        key = next((k for k in keys if slave.get(k)), None)
        if key is None:
            return None
        index = self.settings["master"]["slaves"].index(slave)
        return load_converter(slave[key], "modbus", self.file, "master.slaves[%d].%s" % (index, key), slave)

    def start(self):
        groups = {}  # type: Dict[str, List[Dict[str, Any]]]
        for slave in self.settings["master"]["slaves"]:
            groups.setdefault(endpoint_key(slave), []).append(slave)
        self.endpoints = [EndpointSession(self, key, slaves) for key, slaves in groups.items()]
        self.pollers = {p.name: p for e in self.endpoints for p in e.pollers}
        for endpoint in self.endpoints:
            settings = endpoint.settings
            self.start_worker(endpoint.key, endpoint, AttemptsBackoff(
                settings["connectAttemptCount"], settings["pollPeriod"] / 1000.0,
                settings["waitAfterFailedAttemptsMs"] / 1000.0))
        if self.settings.get("slave"):
            self.server = ServerSession(self, self.settings["slave"])
            self.start_worker(self.server.endpoint, self.server)

    def gauges(self):
        values = {"polls": sum(p.polls for p in self.pollers.values()),
                  "slaves_online": sum(1 for p in self.pollers.values() if p.online)}
        if self.server is not None:
            values["served_requests"] = self.server.responder.requests
        return values

    # -- platform requests (run on the slave's endpoint thread) ---------------------------
    def rpc_target(self, device, method, params, request_id):
        poller, server = self.pollers.get(device), self.server
        if poller is None and server is not None and device == server.name:
            return server.worker, lambda: server.rpc(method, params)
        if poller is None:
            return "unknown Modbus device %s" % device
        tag = next((t for t in poller.slave["rpc"] if t["tag"] == method), None)
        value = params
        if tag is None and isinstance(params, dict) and "functionCode" in params and "address" in params:
            tag = dict(params)  # the generic form: {"tag", "type", "functionCode", "address", ...}
            tag.setdefault("type", "16int")
            value = params.get("value")
        elif isinstance(params, dict) and "value" in params:
            value = params["value"]
        if tag is None:
            return "no rpc entry for method %s on %s" % (method, device)

        def work():
            result = poller.execute(tag, value)
            return {"success": True} if tag["functionCode"] not in (1, 2, 3, 4) else {"value": result}
        return poller.endpoint.worker, work

    def attribute_target(self, device, key, value):
        poller, server = self.pollers.get(device), self.server
        if poller is None and server is not None and device == server.name:
            return server.worker, lambda: server.write_attribute(key, value)
        tag = None if poller is None else next((t for t in poller.slave["attributeUpdates"] if t["tag"] == key), None)
        if tag is None:
            return None
        return poller.endpoint.worker, lambda: poller.execute(tag, value)
