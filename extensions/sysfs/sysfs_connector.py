"""A connector in one file, on the connector kit: reads numbers from files such as a
Raspberry Pi's /sys/class/thermal/thermal_zone0/temp on a schedule.

tb_gateway.json: {"name": "Board", "type": "sysfs", "class": "SysfsConnector", "configuration": "sysfs.json"}
sysfs.json:      {"devices": [{"name": "Pi CPU", "type": "board", "pollPeriod": 5000,
                               "values": [{"key": "cpuTemperature", "path": "/sys/class/thermal/thermal_zone0/temp",
                                           "scale": 0.001}]}]}
RPC: "read" (params {"key": k}) answers the value read now.
"""
import logging
import os
import time

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.connectors.connector import Connector
from thingsboard_gateway.connectors.converter import Converter
from thingsboard_gateway.connectors.worker import DeviceSession, DeviceWorker, SessionLost
from thingsboard_gateway.runtime.backoff import BackoffPolicy
from thingsboard_gateway.runtime.failures import FailureLog

log = logging.getLogger("extensions.sysfs")


class SysfsUplinkConverter(Converter):
    """Pure: {"texts": {key: file content}, "ts": ms} -> ThingsBoard data for one device."""

    def convert(self, config, data):
        values = {}
        for entry in config["values"]:
            text = data["texts"].get(entry["key"])
            if text is not None:
                values[entry["key"]] = round(float(text.strip()) * entry.get("scale", 1), 3)
        return {"deviceName": config["name"], "deviceType": config.get("type", "default"),
                "telemetry": [{"ts": data["ts"], "values": values}], "attributes": {}}


class _Files(DeviceSession):
    """The files of all devices; every method runs on the worker's thread."""

    def __init__(self, connector):
        self.connector = connector

    def connect(self):  # a file that is missing now may appear later: the worker retries with backoff
        for device in self.connector.devices.values():
            for entry in device["values"]:
                if not os.path.exists(entry["path"]):
                    raise OSError("%s: no such file" % entry["path"])
        for name, device in self.connector.devices.items():
            self.worker.set_online(name, device.get("type", "default"), True)
            self.worker.schedule.add(name, device.get("pollPeriod", 5000) / 1000.0)

    def read(self, device):
        texts = {}
        for entry in device["values"]:
            try:
                with open(entry["path"]) as f:
                    texts[entry["key"]] = f.read()
            except OSError as e:
                raise SessionLost("%s: %s" % (entry["path"], e.strerror))
        return texts

    def run_job(self, name):
        device = self.connector.devices[name]
        converted = self.connector.converter.convert(device, {"texts": self.read(device),
                                                              "ts": int(time.time() * 1000)})
        self.connector.gateway.send_to_storage(self.connector.name, self.connector.id, converted)


class SysfsConnector(Connector):
    """Polls the files named in its configuration; answers the RPC `read`."""

    @staticmethod
    def load_config(config, file, warnings=None):
        for i, device in enumerate(config.get("devices") or []):
            if not device.get("name") or not device.get("values"):
                raise ConfigError(file, "devices[%d]" % i, "needs a name and values")
        return config

    def __init__(self, gateway, config, connector_type):
        super(SysfsConnector, self).__init__(gateway, config, connector_type)
        config = self.load_config(config, config.get("configuration", "sysfs.json"))
        self.devices = {d["name"]: d for d in config.get("devices") or []}
        self.converter = SysfsUplinkConverter()
        self.worker = None

    def open(self):
        self.stop_event.clear()
        self.worker = DeviceWorker(self, "files", _Files(self), BackoffPolicy(1.0, 60.0), FailureLog(log), self.clock)
        self.worker.start()  # a thread named connector:<name>-files, watched by the supervisor

    def close(self):
        self.stop_event.set()
        if self.worker is not None:
            self.worker.wake()
        self.join_threads(5.0)

    def server_side_rpc_handler(self, content):
        device, data = self.devices.get(content.get("device")), content.get("data") or {}
        params = data.get("params") if isinstance(data.get("params"), dict) else {}

        def reply(result):
            self.gateway.send_rpc_reply(content.get("device"), data.get("id"), result)

        if device is None or data.get("method") != "read":
            reply({"error": "unknown device or method"})
            return

        def work():  # on the worker's thread, between polls
            values = self.converter.convert(device, {"texts": self.worker.session.read(device), "ts": 0})
            return {"value": values["telemetry"][0]["values"].get(params.get("key"))}
        self.worker.submit(work, reply)
