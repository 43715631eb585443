"""BleConnector: one DeviceWorker per adapter (hci0, ...) serving its devices in turn
(see session.py and README.md beside this file). bluepy is imported when the connector
opens; without it the connector is disabled with one line saying how to install it."""
import logging
from time import time
from typing import Any, Dict, List

from thingsboard_gateway.connectors.ble import config as ble_config
from thingsboard_gateway.connectors.ble.session import AdapterSession
from thingsboard_gateway.connectors.ble.uplink import BleUplinkConverter
from thingsboard_gateway.connectors.connector import ConnectorUnavailable
from thingsboard_gateway.connectors.kit import PollingConnector, now_ms
from thingsboard_gateway.connectors.registry import load_converter

log = logging.getLogger(__name__)

INSTALL = ("bluepy is not installed: BLE needs it (on a Raspberry Pi: sudo apt-get install -y libglib2.0-dev && "
           "sudo pip3 install bluepy==1.3.0)")


def bluepy():
    # type: () -> Any
    """bluepy.btle, or ConnectorUnavailable naming the install command."""
    try:
        from bluepy import btle
    except ImportError:
        raise ConnectorUnavailable(INSTALL)
    return btle


def custom_converters(config, file):
    # type: (Dict[str, Any], str) -> Dict[str, Any]
    """device name -> the custom converter it names from <extensions dir>/ble/."""
    return {d["name"]: load_converter(d["converter"], "ble", file, "devices[%d].converter" % i, d)
            for i, d in enumerate(config["devices"]) if d.get("converter")}


class BleConnector(PollingConnector):
    """Upstream-compatible BLE connector on bluepy."""

    default_file = "ble.json"

    @staticmethod
    def load_config(config, file, warnings=None):
        config = ble_config.load(config, file, warnings)
        custom_converters(config, file)  # a missing class is one line at check and start-up
        return config

    @staticmethod
    def unavailable(config):
        if not config.get("devices"):
            return None
        try:
            bluepy()
        except ConnectorUnavailable as e:
            return str(e)
        return None

    @staticmethod
    def describe_config(config):
        return "%d device(s): %s" % (len(config["devices"]), ", ".join(
            "%s (%s on %s)" % (d["name"], d["MACAddress"], d["adapter"]) for d in config["devices"]))

    def __init__(self, gateway, config, connector_type):
        super(BleConnector, self).__init__(gateway, config, connector_type)
        self.show_map = self.settings["showMap"]
        self.passive = self.settings["passiveScanMode"]
        self.scanner = self.settings["scanner"]
        self.converter = BleUplinkConverter()
        self.custom = custom_converters(self.settings, self.file)
        self.count_notification = self.counts.ticker("notifications")
        self.sessions = []  # type: List[AdapterSession]
        self._delegate_class = None  # type: Any

    def start(self):
        btle = bluepy()
        adapters = {}  # type: Dict[str, List[Dict[str, Any]]]
        for device in self.settings["devices"]:
            adapters.setdefault(device["adapter"], []).append(device)
        self.sessions = [AdapterSession(self, adapter, devices, btle) for adapter, devices in adapters.items()]
        for session in self.sessions:
            self.start_thread(session.watchdog.run, session.adapter + "-watchdog")
            self.start_worker(session.adapter, session)

    def stopping(self):
        for session in self.sessions:
            session.watchdog.cut()

    def is_connected(self):
        return any(d.peripheral is not None for s in self.sessions for d in s.devices.values())

    def gauges(self):
        return {"reads": sum(s.reads for s in self.sessions),
                "devices_connected": sum(1 for s in self.sessions for d in s.devices.values()
                                         if d.peripheral is not None)}

    def delegate(self, session, device):
        # type: (AdapterSession, Any) -> Any
        """A bluepy delegate that hands a device's notifications to its session."""
        if self._delegate_class is None:
            class Delegate(session.btle.DefaultDelegate):
                def __init__(self, owner, target):
                    session.btle.DefaultDelegate.__init__(self)
                    self.owner, self.target = owner, target

                def handleNotification(self, cHandle, data):
                    self.owner.notified(self.target, cHandle, data)
            self._delegate_class = Delegate
        return self._delegate_class(session, device)

    def convert(self, device, values):
        # type: (Dict[str, Any], Dict[str, bytes]) -> None
        """Values read or notified (characteristic UUID -> bytes) -> storage."""
        custom = self.custom.get(device["name"]) if self.custom else None
        if custom is not None:
            self.emit(device["name"], lambda: custom.convert(device, {"values": values, "ts": now_ms()}), "value")
            return
        converted, failures = self.converter.convert_values(device, values, int(time() * 1000))
        self.deliver(device["name"], converted, failures, "value")

    # -- platform requests (on the device's adapter thread) ---------------------------------
    def _find(self, name):
        for session in self.sessions:
            if name in session.devices:
                return session, session.devices[name]
        return None, None

    def rpc_target(self, name, method, params, request_id):
        session, device = self._find(name)
        entry = None if device is None else next((e for e in device.config["serverSideRpc"]
                                                  if e["methodRPC"] == method), None)
        if entry is None:
            return "no serverSideRpc entry for %s on %s" % (method, name)
        return session.worker, lambda: session.execute(device, entry, params)

    def attribute_target(self, name, key, value):
        session, device = self._find(name)
        entries = [dict(e, methodProcessing="write") for e in (device.config["attributeUpdates"] if device else ())
                   if e["attributeOnThingsBoard"] == key]
        if not entries:
            return None

        def write():
            for entry in entries:
                session.execute(device, entry, value)
        return session.worker, write
