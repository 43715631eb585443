"""OpcUaConnector: maps OPC-UA nodes to devices by browse path or node id, reads them by
polling or data-change subscriptions, calls methods and writes nodes on RPC and
attribute updates.

One DeviceWorker, `connector:<name>-<url>`, owns the python-opcua client and runs the
session (session.py): connect with backoff, browse, poll, and the queued RPC and write
tasks.
"""
import logging
from typing import Any, Dict

from thingsboard_gateway.connectors.connector import Connector
from thingsboard_gateway.connectors.opcua import config as opcua_config
from thingsboard_gateway.connectors.opcua.session import Device, OpcUaSession
from thingsboard_gateway.connectors.opcua.uplink import OpcUaUplinkConverter
from thingsboard_gateway.connectors.registry import load_converter
from thingsboard_gateway.connectors.worker import DeviceWorker
from thingsboard_gateway.runtime.backoff import BackoffPolicy
from thingsboard_gateway.runtime.failures import FailureLog

log = logging.getLogger(__name__)


class OpcUaConnector(Connector):
    """Upstream-compatible OPC-UA connector (see README.md beside this file)."""

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
        file = config.get("configuration", "opcua.json")
        self.opcua_config = opcua_config.load(config, file)
        self._converters = {id(m): load_converter(m["converter"], "opcua", file, "mapping[%d].converter" % i, m)
                            if m.get("converter") else OpcUaUplinkConverter()
                            for i, m in enumerate(self.opcua_config["mapping"])}
        self._server = self.opcua_config["server"]
        self.failures = FailureLog(log)
        self.devices = {}  # type: Dict[str, Device]  replaced as a whole by each scan
        self.counts = {"polls": 0, "poll_overruns": 0, "values": 0, "subscription_values": 0}
        self._worker = None  # type: Any

    def converter_for(self, mapping):
        # type: (Dict[str, Any]) -> Any
        """The uplink converter of a mapping entry: built-in, or its custom `converter`."""
        return self._converters[id(mapping)]

    def open(self):
        self.stop_event.clear()
        reconnect = self._server["reconnect"]
        backoff = BackoffPolicy(reconnect["minDelay"] / 1000.0, reconnect["maxDelay"] / 1000.0)
        self._worker = DeviceWorker(self, self._server["url"], OpcUaSession(self), backoff, self.failures, self.clock)
        self._worker.start()

    def close(self):
        self.stop_event.set()
        if self._worker is not None:
            self._worker.wake()
        self.join_threads(max(5.0, self._server["timeoutInMillis"] / 1000.0 + 2))

    def is_connected(self):
        return self._worker is not None and self._worker.connected

    def statistics(self):
        values = dict(self.counts)
        values["devices"] = len(self.devices)
        values["reconnects"] = self._worker.reconnects if self._worker is not None else 0
        for kind, count in self.failures.snapshot().items():
            values["failures_" + kind] = count
        return values

    # -- RPC and writes (queued to the worker's thread) -----------------------------------
    def server_side_rpc_handler(self, content):
        device_name, data = content.get("device"), content.get("data") or {}
        request_id, method, params = data.get("id"), data.get("method"), data.get("params")

        def reply(result):
            self.gateway.send_rpc_reply(device_name, request_id, result)

        device = self.devices.get(device_name)
        if device is None or self._worker is None:
            reply({"error": "unknown OPC-UA device %s" % device_name})
            return
        self._worker.submit(lambda: self._worker.session.rpc(device, method, params), reply)

    def on_attributes_update(self, content):
        device = self.devices.get(content.get("device"))
        if device is None or self._worker is None:
            return
        session = self._worker.session
        for key, value in (content.get("data") or {}).items():
            entry = next((e for e in device.mapping["attributes_updates"] if e["key"] == key), None)
            if entry is None:
                continue

            def work(entry=entry, value=value):
                node = session.node_for(device, entry["value"])
                if node is None:
                    raise ValueError("no node %s" % entry["value"])
                session.write(node, value)
            self._worker.submit(work)

