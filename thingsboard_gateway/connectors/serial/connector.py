"""SerialConnector: one DeviceWorker (thread) per serial port, running its PortSession
(session.py). The port's listening device gets the frames the line sends by itself;
polled devices (requestString) are asked in turn on their pollPeriod; RPCs and attribute
writes run on the port's thread between reads. A port that vanishes (USB adapter
unplugged) is reopened with backoff."""
import logging
from time import time
from typing import Any, Dict, List, Optional, Tuple

from thingsboard_gateway.connectors.kit import PollingConnector
from thingsboard_gateway.connectors.registry import load_converter
from thingsboard_gateway.connectors.serial import config as serial_config
from thingsboard_gateway.connectors.serial.downlink import attribute_bytes, rpc_bytes
from thingsboard_gateway.connectors.serial.session import PortSession
from thingsboard_gateway.connectors.serial.uplink import SerialUplinkConverter

log = logging.getLogger(__name__)

BUILTIN_UPLINK, BUILTIN_DOWNLINK = "SerialUplinkConverter", "SerialDownlinkConverter"  # upstream's names


def custom_converters(config, file):
    # type: (Dict[str, Any], str) -> Dict[Tuple[str, str], Any]
    """(device name, "converter" or "downlink_converter") -> the custom converter a device
    names from <extensions dir>/serial/ (upstream's names mean the built-in ones)."""
    found = {}
    for index, device in enumerate(config["devices"]):
        for key, builtin in (("converter", BUILTIN_UPLINK), ("downlink_converter", BUILTIN_DOWNLINK)):
            if device.get(key) and device[key] != builtin:
                found[(device["name"], key)] = load_converter(device[key], "serial", file,
                                                              "devices[%d].%s" % (index, key), device)
    return found


class SerialConnector(PollingConnector):
    """Upstream-compatible serial connector (see README.md beside this file)."""

    default_file = "custom_serial.json"

    @staticmethod
    def load_config(config, file, warnings=None):
        config = serial_config.load(config, file, warnings)
        custom_converters(config, file)  # a missing class is one line at check and start-up
        return config

    @staticmethod
    def describe_config(config):
        devices = config["devices"]
        ports = sorted(set(d["port"] for d in devices))
        return "%d device(s) on %d port(s): %s" % (len(devices), len(ports), ", ".join(
            "%s (%s %d baud)" % (d["name"], d["port"], d["baudrate"]) for d in devices))

    def __init__(self, gateway, config, connector_type):
        super(SerialConnector, self).__init__(gateway, config, connector_type)
        self.converter = SerialUplinkConverter()
        self.custom = custom_converters(self.settings, self.file)
        self.devices = {d["name"]: d for d in self.settings["devices"]}
        self.sessions = []  # type: List[PortSession]
        self._count_frame = self.counts.ticker("frames")

    def start(self):
        ports = {}  # type: Dict[str, List[Dict[str, Any]]]
        for device in self.settings["devices"]:
            ports.setdefault(device["port"], []).append(device)
        self.sessions = [PortSession(self, port, devices) for port, devices in ports.items()]
        for session in self.sessions:
            self.start_worker(session.port, session)

    def gauges(self):
        return {"ports_open": sum(1 for worker in self.workers if worker.connected)}

    def note(self, kind, where, message, sample=None):
        # type: (str, str, str, Any) -> None
        self.count("%s:%s" % (kind, where), "%s: %s" % (where, message), sample)

    # -- on a port's thread ----------------------------------------------------------------
    def convert(self, device, frame):
        # type: (Dict[str, Any], bytes) -> None
        self._count_frame()
        custom = self.custom.get((device["name"], "converter")) if self.custom else None
        if custom is not None:
            self.emit(device["name"], lambda: custom.convert(device, frame), "frame", frame)
            return
        converted, failures = self.converter.convert_detailed(device, {"frame": frame, "ts": int(time() * 1000)})
        self.deliver(device["name"], converted, failures, "frame", frame)

    def downlink(self, device, request):
        # type: (Dict[str, Any], Dict[str, Any]) -> bytes
        custom = self.custom.get((device["name"], "downlink_converter"))
        if custom is not None:
            data = custom.convert(device, request)
            return data.encode("utf-8") if isinstance(data, str) else bytes(data)
        if "method" in request:
            return rpc_bytes(request["entry"], device, request["method"], request["params"])
        return attribute_bytes(request["entry"], request["key"], request["value"])

    # -- platform requests (on the device's port thread) --------------------------------------
    def _session(self, device):
        # type: (Dict[str, Any]) -> PortSession
        return next(s for s in self.sessions if s.port == device["port"])

    def rpc_target(self, name, method, params, request_id):
        device = self.devices.get(name)
        entry = None if device is None else next((e for e in device["serverSideRpc"] if e["method"] == method), None)
        if entry is None:
            return "no serverSideRpc entry for method %s on %s" % (method, name)
        session = self._session(device)
        return session.worker, lambda: session.call(device, entry, method, params)

    def attribute_target(self, name, key, value):
        device = self.devices.get(name)
        entries = [e for e in (device or {}).get("attributeUpdates", ())
                   if key in (e.get("attributeOnPlatform"), e.get("attributeOnThingsBoard"))]
        if not entries:
            return None
        session = self._session(device)

        def write():
            for entry in entries:
                session.write(self.downlink(device, {"key": key, "value": value, "entry": entry}))
        return session.worker, write
