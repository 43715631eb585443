"""BleConnector: one DeviceWorker per adapter (hci0, ...) serving its devices in turn
(see session.py and README.md beside this file). bluepy is imported when the connector
opens; without it the connector is disabled with one line saying how to install it."""
import logging
import time
from typing import Any, Dict, List

from thingsboard_gateway.connectors.ble import config as ble_config
from thingsboard_gateway.connectors.ble.session import AdapterSession
from thingsboard_gateway.connectors.ble.uplink import BleUplinkConverter
from thingsboard_gateway.connectors.connector import Connector, ConnectorUnavailable
from thingsboard_gateway.connectors.registry import load_converter
from thingsboard_gateway.connectors.worker import DeviceWorker
from thingsboard_gateway.runtime.backoff import BackoffPolicy
from thingsboard_gateway.runtime.failures import FailureLog

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


class BleConnector(Connector):
    """Upstream-compatible BLE connector on bluepy."""

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
        file = config.get("configuration", "ble.json")
        self._config = ble_config.load(config, file)
        self.show_map = self._config["showMap"]
        self.passive = self._config["passiveScanMode"]
        self.scanner = self._config["scanner"]
        self.failures = FailureLog(log)
        self.converter = BleUplinkConverter()
        self.custom = custom_converters(self._config, file)
        self.sessions = []  # type: List[AdapterSession]
        self.reads = 0
        self.notifications = 0
        self._delegate_class = None  # type: Any

    def open(self):
        btle = bluepy()
        self.stop_event.clear()
        adapters = {}  # type: Dict[str, List[Dict[str, Any]]]
        for device in self._config["devices"]:
            adapters.setdefault(device["adapter"], []).append(device)
        self.sessions = [AdapterSession(self, adapter, devices, btle) for adapter, devices in adapters.items()]
        for session in self.sessions:
            self.start_thread(session.watchdog.run, session.adapter + "-watchdog")
            DeviceWorker(self, session.adapter, session, BackoffPolicy(1.0, 30.0), self.failures, self.clock).start()

    def close(self):
        self.stop_event.set()
        for session in self.sessions:
            session.worker.wake()
            session.watchdog.cut()
        self.join_threads(5.0)

    def is_connected(self):
        return any(d.peripheral is not None for s in self.sessions for d in s.devices.values())

    def statistics(self):
        values = {"reads": self.reads, "notifications": self.notifications,
                  "devices_connected": sum(1 for s in self.sessions for d in s.devices.values()
                                           if d.peripheral is not None)}
        for kind, count in self.failures.snapshot().items():
            values["failures_" + kind] = count
        return values

    def count(self, kind, message):
        # type: (str, str) -> None
        self.failures.count(kind, "%s: %s" % (self.name, message))

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
        try:
            if custom is not None:
                converted, failures = custom.convert(device, {"values": values, "ts": int(time.time() * 1000)}), []
            else:
                converted, failures = self.converter.convert_values(device, values)
        except Exception as e:  # a custom converter's own failure: counted
            self.count("converter:" + device["name"], "converter failed: %s: %s" % (type(e).__name__, e))
            return
        if failures:
            self.count("value:" + device["name"], "%s: %s" % (device["name"], "; ".join("%s: %s" % f
                                                                                      for f in failures)))
        if converted:
            self.gateway.send_to_storage(self.name, self.id, converted)

    # -- platform requests ------------------------------------------------------------------
    def _find(self, name):
        for session in self.sessions:
            if name in session.devices:
                return session, session.devices[name]
        return None, None

    def server_side_rpc_handler(self, content):
        name, method, params, reply = self.rpc_request(content)
        session, device = self._find(name)
        entry = None if device is None else next((e for e in device.config["serverSideRpc"]
                                                  if e["methodRPC"] == method), None)
        if entry is None:
            reply({"error": "no serverSideRpc entry for %s on %s" % (method, name)})
            return
        session.worker.submit(lambda: session.execute(device, entry, params), reply)

    def on_attributes_update(self, content):
        session, device = self._find(content.get("device"))
        if device is None:
            return
        for key, value in (content.get("data") or {}).items():
            for entry in device.config["attributeUpdates"]:
                if entry["attributeOnThingsBoard"] == key:
                    write = dict(entry, methodProcessing="write")
                    session.worker.submit(lambda e=write, v=value: session.execute(device, e, v))
