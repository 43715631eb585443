"""SnmpConnector: polls SNMP agents (switches, UPSes, printers, PDUs) as upstream's snmp.json
describes them, one DeviceWorker thread per device, so a silent agent never delays another
(see README.md beside this file). Sync, over UDP, with puresnmp 1.11's codec."""
import logging
from typing import Any, Dict, Optional

from thingsboard_gateway.connectors.kit import PollingConnector
from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.connectors.registry import load_converter
from thingsboard_gateway.connectors.snmp import config as snmp_config
from thingsboard_gateway.connectors.snmp.session import SnmpDevice, matching
from thingsboard_gateway.runtime.backoff import BackoffPolicy

log = logging.getLogger(__name__)


class SnmpConnector(PollingConnector):
    """Upstream-compatible SNMP v1/v2c connector."""

    default_file = "snmp.json"

    @staticmethod
    def load_config(config, file, warnings=None):
        config = snmp_config.load(config, file, warnings)
        for index, device in enumerate(config["devices"]):
            if device.get("converter"):
                try:
                    load_converter(device["converter"], "snmp", file, "devices[%d].converter" % index, device)
                except ConfigError as e:  # upstream's own example names a class it does not ship
                    device["unavailable"] = str(e)
                    if warnings is not None:
                        warnings.append("%s: devices[%d] (%s) is not polled: %s" % (file, index, device["deviceName"],
                                                                                     e))
        return config

    @staticmethod
    def describe_config(config):
        devices = config["devices"]
        return "%d device(s): %s" % (len(devices), ", ".join(
            "%s (%s:%d, %s, %d keys every %d ms)" % (d["deviceName"], d["ip"], d["port"], "v1" if d["versionNumber"]
                                                     == 0 else "v2c", len(d["attributes"]) + len(d["telemetry"]),
                                                     d["pollPeriod"]) for d in devices))

    def __init__(self, gateway, config, connector_type):
        super(SnmpConnector, self).__init__(gateway, config, connector_type)
        self.sessions = {}  # type: Dict[str, SnmpDevice]

    def start(self):
        file = self.file
        for index, device in enumerate(self.settings["devices"]):
            if device.get("unavailable"):
                log.error("SNMP connector %s: device %s is not polled: %s", self.name, device["deviceName"],
                          device["unavailable"])
                continue
            custom = None  # type: Optional[Any]
            if device.get("converter"):
                custom = load_converter(device["converter"], "snmp", file, "devices[%d].converter" % index, device)
            session = SnmpDevice(self, device, custom)
            self.sessions.setdefault(device["deviceName"], session)
            # UDP has no connection: "connect" makes the socket, it does not fail for a dead agent
            self.start_worker("%s-%s:%d" % (device["deviceName"], device["ip"], device["port"]), session,
                              BackoffPolicy(1.0, 30.0))

    def gauges(self):
        return {"polls": sum(s.polls for s in self.sessions.values()),
                "devices_online": sum(1 for s in self.sessions.values() if s.online)}

    # -- platform requests (run on the device's own thread) ------------------------------------
    def rpc_target(self, device, method, params, request_id):
        session = self.sessions.get(device)
        if session is None:
            return "unknown SNMP device %s" % device
        entry = matching(session.device["serverSideRpcRequests"], "requestFilter", str(method))
        if entry is None:
            return "no serverSideRpcRequests entry of %s matches method %s" % (device, method)
        return session.worker, lambda: session.rpc(entry, params)

    def attribute_target(self, device, key, value):
        session = self.sessions.get(device)
        if session is None:
            return None
        entry = matching(session.device["attributeUpdateRequests"], "attributeFilter", key)
        if entry is None:
            return None
        return session.worker, lambda: session.write(entry, value)
