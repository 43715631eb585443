"""OpcUaConnector: maps OPC-UA nodes to devices by browse path or node id, reads them by
polling or data-change subscriptions, calls methods and writes nodes on RPC and
attribute updates.

One DeviceWorker, `connector:<name>-<url>`, owns the python-opcua client and runs the
session (session.py): connect with backoff, browse, poll, and the queued RPC and write
tasks.
"""
import logging
from typing import Any, Dict

from thingsboard_gateway.connectors.kit import PollingConnector
from thingsboard_gateway.connectors.opcua import config as opcua_config
from thingsboard_gateway.connectors.opcua.session import Device, OpcUaSession
from thingsboard_gateway.connectors.opcua.uplink import OpcUaUplinkConverter
from thingsboard_gateway.connectors.registry import load_converter
from thingsboard_gateway.runtime.backoff import BackoffPolicy

log = logging.getLogger(__name__)


class OpcUaConnector(PollingConnector):
    """Upstream-compatible OPC-UA connector (see README.md beside this file)."""

    default_file = "opcua.json"

    @staticmethod
    def load_config(config, file, warnings=None):
        config = opcua_config.load(config, file, warnings)
        for index, mapping in enumerate(config["mapping"]):
            if mapping.get("converter"):  # a missing class is a one-line error at check and start-up
                load_converter(mapping["converter"], "opcua", file, "mapping[%d].converter" % index, mapping)
        return config

    @staticmethod
    def describe_config(config):
        return "server %s, %d mapping(s): %s" % (config["server"]["url"], len(config["mapping"]),
                                                 ", ".join(m["deviceNodePattern"] for m in config["mapping"]))

    def __init__(self, gateway, config, connector_type):
        super(OpcUaConnector, self).__init__(gateway, config, connector_type)
        self._converters = {id(m): load_converter(m["converter"], "opcua", self.file, "mapping[%d].converter" % i, m)
                            if m.get("converter") else OpcUaUplinkConverter()
                            for i, m in enumerate(self.settings["mapping"])}
        self._server = self.settings["server"]
        self.close_timeout = max(5.0, self._server["timeoutInMillis"] / 1000.0 + 2)
        self.devices = {}  # type: Dict[str, Device]  replaced as a whole by each scan
        self._worker = None  # type: Any

    def converter_for(self, mapping):
        # type: (Dict[str, Any]) -> Any
        """The uplink converter of a mapping entry: built-in, or its custom `converter`."""
        return self._converters[id(mapping)]

    def start(self):
        reconnect = self._server["reconnect"]
        backoff = BackoffPolicy(reconnect["minDelay"] / 1000.0, reconnect["maxDelay"] / 1000.0)
        self._worker = self.start_worker(self._server["url"], OpcUaSession(self), backoff)

    def gauges(self):
        worker = self._worker
        values = dict(worker.session.counts) if worker is not None else {}
        values["devices"] = len(self.devices)
        values["reconnects"] = worker.reconnects if worker is not None else 0
        return values

    # -- RPC and writes (on the server's worker thread) -----------------------------------
    def rpc_target(self, name, method, params, request_id):
        device, worker = self.devices.get(name), self._worker
        if device is None or worker is None:
            return "unknown OPC-UA device %s" % name
        return worker, lambda: worker.session.rpc(device, method, params)

    def attribute_target(self, name, key, value):
        device, worker = self.devices.get(name), self._worker
        entry = None if device is None else next((e for e in device.mapping["attributes_updates"]
                                                   if e["key"] == key), None)
        if entry is None or worker is None:
            return None
        session = worker.session

        def write():
            node = session.node_for(device, entry["value"])
            if node is None:
                raise ValueError("no node %s" % entry["value"])
            session.write(node, value)
        return worker, write
