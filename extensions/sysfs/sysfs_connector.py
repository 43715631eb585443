"""A connector in one file, on the connector kit: reads numbers from files such as a
Raspberry Pi's /sys/class/thermal/thermal_zone0/temp on a schedule.

tb_gateway.json: {"name": "Board", "type": "sysfs", "class": "SysfsConnector", "configuration": "sysfs.json"}
sysfs.json:      {"devices": [{"name": "Pi CPU", "type": "board", "pollPeriod": 5000,
                               "values": [{"key": "cpuTemperature", "path": "/sys/class/thermal/thermal_zone0/temp",
                                           "scale": 0.001}]}]}
RPC: "read" (params {"key": k}) answers the value read now.
"""
import os

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.connectors.converter import Converter
from thingsboard_gateway.connectors.kit import PollingConnector, now_ms
from thingsboard_gateway.connectors.worker import DeviceSession, SessionLost
from thingsboard_gateway.runtime.backoff import BackoffPolicy


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
        texts = self.read(device)
        self.connector.emit(name, lambda: self.connector.converter.convert(device, {"texts": texts, "ts": now_ms()}),
                            "value")


class SysfsConnector(PollingConnector):
    """Polls the files named in its configuration; answers the RPC `read`."""

    default_file = "sysfs.json"

    @staticmethod
    def load_config(config, file, warnings=None):
        for i, device in enumerate(config.get("devices") or []):
            if not device.get("name") or not device.get("values"):
                raise ConfigError(file, "devices[%d]" % i, "needs a name and values")
        return config

    def __init__(self, gateway, config, connector_type):
        super(SysfsConnector, self).__init__(gateway, config, connector_type)
        self.devices = {d["name"]: d for d in self.settings.get("devices") or []}
        self.converter = SysfsUplinkConverter()

    def start(self):  # a thread named connector:<name>-files, watched by the supervisor
        self.start_worker("files", _Files(self), BackoffPolicy(1.0, 60.0))

    def rpc_target(self, name, method, params, request_id):
        device, worker = self.devices.get(name), self.workers[0] if self.workers else None
        if device is None or method != "read" or worker is None:
            return "unknown device or method"
        key = params.get("key") if isinstance(params, dict) else None

        def work():  # on the worker's thread, between polls
            values = self.converter.convert(device, {"texts": worker.session.read(device), "ts": 0})
            return {"value": values["telemetry"][0]["values"].get(key)}
        return worker, work
