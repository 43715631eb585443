"""Example custom connector: simulated devices polled by the connector kit's DeviceWorker.

Shows the whole extension API: a watched worker thread with a schedule, a pure uplink
converter, converted data handed to gateway.send_to_storage, devices reported online,
RPC replies and attribute updates.
"""
import logging
import random
import threading
import time

from thingsboard_gateway.connectors.connector import Connector
from thingsboard_gateway.connectors.worker import DeviceSession, DeviceWorker
from thingsboard_gateway.runtime.backoff import BackoffPolicy
from thingsboard_gateway.runtime.failures import FailureLog

from simulator_converter import SimulatorUplinkConverter

log = logging.getLogger("extensions.simulator")


class SimulatorConnector(Connector):
    """Simulated devices from the `devices` list of its configuration file."""

    def __init__(self, gateway, config, connector_type):
        super(SimulatorConnector, self).__init__(gateway, config, connector_type)
        self._devices = {d["name"]: d for d in config.get("devices", [])}
        self._pinned = {}  # (device, key) -> value set by RPC
        self._settings = {}  # device -> shared attributes
        self._lock = threading.Lock()
        self._converter = SimulatorUplinkConverter()
        self._worker = None
        self._random = random.Random(config.get("seed"))
        self._announced = set()
        self._counters = {}  # (device, key) -> last value of a counter

    @staticmethod
    def describe_config(config):
        devices = config.get("devices", [])
        return "%d simulated device(s): %s" % (len(devices), ", ".join(d.get("name", "?") for d in devices))

    def open(self):
        self.stop_event.clear()
        self._worker = DeviceWorker(self, "simulator", _Session(self), BackoffPolicy(), FailureLog(log))
        self._worker.start()

    def close(self):
        self.stop_event.set()
        if self._worker is not None:
            self._worker.wake()
        self.join_threads(5.0)

    def _reading(self, device):
        values = {}
        for spec in device.get("telemetry", []):
            key = spec["key"]
            with self._lock:
                pinned = self._pinned.get((device["name"], key))
            if pinned is not None:
                values[key] = pinned
            elif spec.get("counter"):
                with self._lock:
                    count = self._counters.get((device["name"], key), 0) + 1
                    self._counters[(device["name"], key)] = count
                values[key] = count
            elif isinstance(spec.get("min"), int) and isinstance(spec.get("max"), int):
                values[key] = self._random.randint(spec["min"], spec["max"])
            else:
                values[key] = self._random.uniform(spec.get("min", 0.0), spec.get("max", 1.0))
        return {"ts": int(time.time() * 1000), "values": values}

    def poll(self, name):
        device = self._devices[name]
        converted = self._converter.convert(device, self._reading(device))
        if device["name"] in self._announced:
            converted["attributes"] = {}  # static attributes go once per start
        self._announced.add(device["name"])
        self.gateway.send_to_storage(self.name, self.id, converted)

    def server_side_rpc_handler(self, content):
        device = content["device"]
        data = content["data"]
        method, params = data.get("method"), data.get("params") or {}
        if method == "echo":
            result = {"echo": params}
        elif method == "set" and isinstance(params, dict) and "key" in params:
            with self._lock:
                self._pinned[(device, params["key"])] = params.get("value")
            result = {"success": True}
        elif method == "get" and isinstance(params, dict):
            reading = self._reading(self._devices[device]) if device in self._devices else {"values": {}}
            result = {"value": reading["values"].get(params.get("key"))}
        else:
            result = {"error": "unknown method %s" % method}
        self.gateway.send_rpc_reply(device, data.get("id"), result)

    def on_attributes_update(self, content):
        with self._lock:
            self._settings.setdefault(content["device"], {}).update(content.get("data") or {})
        log.info("Attribute update for %s: %s", content["device"], content.get("data"))


class _Session(DeviceSession):
    """Simulated devices need no link: connect() reports them online and schedules a
    poll of each at its pollPeriod."""

    def __init__(self, connector):
        self.connector = connector

    def connect(self):
        for name, device in self.connector._devices.items():
            self.worker.set_online(name, device.get("type", "default"), True)
            self.worker.schedule.add(name, max(0.05, device.get("pollPeriod", 1000) / 1000.0))

    def run_job(self, key):
        self.connector.poll(key)
