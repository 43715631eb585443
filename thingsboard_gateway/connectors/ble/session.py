"""One BLE adapter's work (runs on its DeviceWorker thread): devices served in turn —
connect by MAC with retries as upstream (connectRetry, connectRetryInSeconds,
waitAfterConnectRetries; each disconnected device has its own ("link", name) job in the
worker's schedule, due after its backoff delay), read characteristics every pollPeriod,
wait for notifications, RPC reads/writes/scans. Every bluepy call is bounded by the device's `timeout`: a
`Watchdog` kills that peripheral's bluepy-helper when a call hangs, which makes the call
fail, so one hung peripheral never holds the others longer than its timeout. A
peripheral is released (helper process ended and reaped) on every path."""
import logging
import math
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from thingsboard_gateway.connectors.ble.config import iface
from thingsboard_gateway.connectors.ble.downlink import to_bytes
from thingsboard_gateway.connectors.worker import DeviceSession
from thingsboard_gateway.runtime.backoff import AttemptsBackoff

log = logging.getLogger(__name__)

NOTIFY_SLICE = 0.1  # seconds of waitForNotifications per round, shared by the adapter's devices
LINK = "link"      # a disconnected device's connect job: ("link", name), due after its backoff delay
CCCD_ON = b"\x01\x00"


def release(peripheral):
    # type: (Any) -> None
    """Disconnect, and make sure bluepy's helper process is gone (killed and reaped)."""
    try:
        peripheral.disconnect()
    except Exception:  # a killed or hung helper: end it below
        pass
    helper = getattr(peripheral, "_helper", None)
    if helper is not None:
        try:
            helper.kill()
            helper.wait(2)
        except Exception:
            log.debug("ending bluepy-helper failed", exc_info=True)
        for pipe in (getattr(helper, "stdin", None), getattr(helper, "stdout", None)):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:  # a broken pipe's unflushed command: nothing more to do
                pass
        peripheral._helper = None
    stderr = getattr(peripheral, "_stderr", None)  # bluepy's /dev/null for the helper
    if stderr is not None:
        stderr.close()
        peripheral._stderr = None


class Watchdog(object):
    """Bounds the adapter thread's current bluepy call; one thread per adapter.

    Arming is two attribute writes (no lock, no wake-up): the watchdog thread looks at
    the armed call every TICK seconds, so a hung call is cut within its timeout + TICK.
    It kills the helper only if the call it saw is still the armed one."""

    TICK = 0.25

    def __init__(self, stop_event):
        # type: (threading.Event) -> None
        self._stop = stop_event
        self.armed = None  # type: Optional[Tuple[Any, float]]  (peripheral, deadline) of the call in progress
        self.fired = 0

    def guard(self, peripheral, seconds):
        # type: (Any, float) -> Watchdog
        """`with watchdog.guard(peripheral, seconds): <one bluepy call>`. (A hot loop may
        instead set `watchdog.armed = (peripheral, deadline)` and back to None itself.)"""
        self.armed = (peripheral, time.monotonic() + seconds)
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.armed = None
        return False

    def cut(self):
        """End the call in progress now (closing: the adapter thread must not sit out a
        hung peripheral's timeout)."""
        armed = self.armed
        if armed is not None:
            self._kill(armed[0])

    def run(self):
        while not self._stop.wait(self.TICK):
            armed = self.armed
            if armed is None or time.monotonic() < armed[1] or self.armed is not armed:
                continue
            self.fired += 1
            self._kill(armed[0])

    @staticmethod
    def _kill(peripheral):
        helper = getattr(peripheral, "_helper", None)
        if helper is not None:
            try:
                helper.kill()  # the blocked call now fails: the helper exited
            except OSError:
                pass


class BleDevice(object):
    """A configured device's link state (adapter thread only)."""

    def __init__(self, config):
        # type: (Dict[str, Any]) -> None
        self.config = config
        self.name = config["name"]
        self.timeout = config["timeout"] / 1000.0
        self.read_uuids = sorted({e["characteristicUUID"] for e in config["telemetry"] + config["attributes"]
                                  if e["method"] == "read"})
        self.notify_uuids = sorted({e["characteristicUUID"] for e in config["telemetry"] + config["attributes"]
                                    if e["method"] == "notify"})
        self.backoff = AttemptsBackoff(config["connectRetry"], config["connectRetryInSeconds"],
                                       config["waitAfterConnectRetries"])
        self.peripheral = None  # type: Any
        self.characteristics = {}  # type: Dict[str, Any]
        self.readable = []  # type: List[Tuple[str, Any]]  (uuid, characteristic) read every poll, found at connect
        self.handles = {}  # type: Dict[int, str]  notification handle -> characteristic UUID


class AdapterSession(DeviceSession):
    """The devices on one adapter; every method runs on the adapter's worker thread."""

    def __init__(self, connector, adapter, devices, btle):
        # type: (Any, str, List[Dict[str, Any]], Any) -> None
        self.connector = connector
        self.adapter = adapter
        self.iface = iface(adapter)
        self.btle = btle
        self.devices = {d["name"]: BleDevice(d) for d in devices}
        self.polled = {}  # type: Dict[float, List[BleDevice]]  poll period (s) -> devices read on it
        for device in self.devices.values():
            if device.read_uuids:
                self.polled.setdefault(device.config["pollPeriod"] / 1000.0, []).append(device)
        self.watchdog = Watchdog(connector.stop_event)
        self.errors = (btle.BTLEException, OSError, ValueError)  # OSError: writing to a helper that was killed
        self.reads = 0

    def connect(self):
        # Jobs of one period share a phase (due on multiples of the period), so 20 devices
        # polled every second wake the thread once a second, not 20 times.
        schedule, now = self.worker.schedule, self.worker.clock()
        for device in self.devices.values():  # each device's connect is a job of its own
            if device.peripheral is None and (LINK, device.name) not in schedule:
                self._retry(device, now)
        for period in self.polled:
            if ("poll", period) not in schedule:
                schedule.add(("poll", period), period, math.ceil(now / period) * period)
        if any(d.notify_uuids for d in self.devices.values()) and "notify" not in schedule:
            schedule.add("notify", 0.0)

    def disconnect(self):
        for device in self.devices.values():
            self._drop(device)

    def run_job(self, key):
        if key == "notify":
            self._notifications()
        elif key[0] == LINK:  # one device's connect, due after its backoff delay
            self._link(self.devices[key[1]])
        else:  # ("poll", period): the devices read on that period, in turn
            for device in self.polled[key[1]]:
                if device.peripheral is not None:
                    self._poll(device)

    # -- per device ---------------------------------------------------------------------------
    def _drop(self, device, reason=None):
        # type: (BleDevice, Optional[str]) -> None
        if device.peripheral is not None:
            release(device.peripheral)
            device.peripheral = None
            self.worker.set_online(device.name, device.config["deviceType"], False)
        if reason is not None:
            self.connector.count("connection:" + device.name, "%s (%s): lost: %s"
                                 % (device.name, device.config["MACAddress"], reason))
            self._retry(device, self.worker.clock() + device.backoff.next_delay())

    def _retry(self, device, when):
        # type: (BleDevice, float) -> None
        """Connect `device` at `when` (its job runs again every backoff delay until it links)."""
        self.worker.schedule.add((LINK, device.name), max(device.backoff.retry_delay, device.backoff.wait), when)

    def _link(self, device):
        # type: (BleDevice) -> None
        if device.peripheral is not None:
            self.worker.schedule.remove((LINK, device.name))
            return
        config = device.config
        peripheral = self.btle.Peripheral()
        try:
            with self.watchdog.guard(peripheral, device.timeout):
                peripheral.connect(config["MACAddress"], config["addrType"], self.iface)
                peripheral.withDelegate(self.connector.delegate(self, device))
                device.characteristics = {str(c.uuid).lower(): c for c in peripheral.getCharacteristics()}
                found = [(uuid, self._characteristic(device, uuid)) for uuid in device.read_uuids]
                device.readable = [(uuid, c) for uuid, c in found if c is not None]
                device.handles = {}
                for uuid in device.notify_uuids:
                    characteristic = self._characteristic(device, uuid)
                    if characteristic is None:
                        continue
                    device.handles[characteristic.getHandle()] = uuid
                    peripheral.writeCharacteristic(characteristic.getHandle() + 1, CCCD_ON, withResponse=True)
        except self.errors as e:
            release(peripheral)
            self.worker.schedule.postpone((LINK, device.name), self.worker.clock() + device.backoff.next_delay())
            self.connector.count("connect:" + device.name, "%s (%s): cannot connect: %s: %s"
                                 % (device.name, config["MACAddress"], type(e).__name__, e))
            return
        device.peripheral = peripheral
        device.backoff.connected()
        self.worker.schedule.remove((LINK, device.name))
        self.worker.set_online(device.name, config["deviceType"], True)
        if config["showMap"] or self.connector.show_map:
            log.info("%s (%s) characteristics: %s", device.name, config["MACAddress"],
                     ", ".join("%s handle %d" % (u, c.getHandle()) for u, c in sorted(device.characteristics.items())))
        if device.read_uuids:
            self._poll(device)

    def _characteristic(self, device, uuid):
        # type: (BleDevice, str) -> Any
        """The device's characteristic `uuid`, or None (counted: the peripheral lacks it)."""
        characteristic = device.characteristics.get(uuid)
        if characteristic is None:
            self.connector.count("characteristic:" + device.name, "%s has no characteristic %s" % (device.name, uuid))
        return characteristic

    def _poll(self, device):
        # type: (BleDevice) -> None
        """Read the device's `read` characteristics; the watchdog bounds them together by
        timeout x their number (armed once per poll: this is the hot path)."""
        values = {}
        readable = device.readable
        watchdog = self.watchdog
        watchdog.armed = (device.peripheral, time.monotonic() + device.timeout * len(readable))
        lost = None
        try:
            for uuid, characteristic in readable:
                values[uuid] = characteristic.read()
        except self.errors as e:
            lost = "%s: %s" % (type(e).__name__, e)
        finally:
            watchdog.armed = None
        if lost is not None:
            self._drop(device, lost)
            return
        self.reads += len(values)  # only this adapter's thread adds: no lock on the hot path
        if values:
            self.connector.convert(device.config, values)

    def _notifications(self):
        listening = [d for d in self.devices.values() if d.peripheral is not None and d.handles]
        if not listening:
            self.connector.stop_event.wait(NOTIFY_SLICE)  # nobody to wait for now; links are checked each second
            return
        for device in listening:
            try:
                with self.watchdog.guard(device.peripheral, device.timeout + NOTIFY_SLICE):
                    device.peripheral.waitForNotifications(NOTIFY_SLICE / len(listening))
            except self.errors as e:
                self._drop(device, "%s: %s" % (type(e).__name__, e))

    def notified(self, device, handle, data):
        # type: (BleDevice, int, bytes) -> None
        """A notification arrived (bluepy calls the delegate inside waitForNotifications)."""
        uuid = device.handles.get(handle)
        if uuid is not None:
            self.connector.count_notification()
            self.connector.convert(device.config, {uuid: data})

    # -- requests ------------------------------------------------------------------------------
    def execute(self, device, entry, params):
        # type: (BleDevice, Dict[str, Any], Any) -> Any
        """An RPC or attribute write on this adapter's thread."""
        if entry.get("methodProcessing") == "scan":
            return {"result": self.scan()}
        if device.peripheral is None:
            raise ValueError("%s is not connected" % device.name)
        uuid = entry["characteristicUUID"]
        characteristic = device.characteristics.get(uuid)
        if characteristic is None:
            raise ValueError("%s has no characteristic %s" % (device.name, uuid))
        reading = entry.get("methodProcessing") == "read"
        data = None if reading else to_bytes(params)  # a value that is no bytes is the requester's error
        try:
            with self.watchdog.guard(device.peripheral, device.timeout):
                if reading:
                    data = characteristic.read()
                else:
                    characteristic.write(data, withResponse=entry.get("withResponse", True))
        except (self.btle.BTLEException, OSError) as e:  # the link broke
            self._drop(device, "%s: %s" % (type(e).__name__, e))
            raise ValueError("%s: %s: %s" % (device.name, type(e).__name__, e))
        if not reading:
            return {"success": True}
        try:
            return {"result": data.decode("utf-8"), "hex": data.hex()}
        except UnicodeDecodeError:
            return {"result": data.hex(), "hex": data.hex()}

    def scan(self):
        # type: () -> List[Dict[str, Any]]
        seconds = self.connector.scanner["timeout"] / 1000.0
        entries = self.btle.Scanner(self.iface).scan(seconds, passive=self.connector.passive)
        return [{"address": e.addr, "addrType": e.addrType, "rssi": e.rssi,
                 "name": e.getValueText(9) or e.getValueText(8)} for e in entries]
