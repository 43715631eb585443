"""Ingest: the `gateway` object every connector talks to (connectors/connector.py,
GatewayApi), and the way a value travels from a connector into storage:

  send_to_storage -> device filter and report strategy (DataPolicy)
                  -> normalize_record (validate, serialize; gateway/validation.py)
                  -> the device registry (announced on the platform when new)
                  -> StorageWriter.submit (the bounded queue; backpressure)
                  -> the storage-writer thread -> storage -> the sender -> the platform

It runs on the connectors' threads; everything it touches is thread-safe. The device
registry and device activity live here too (add_device, del_device, the inactivity check).
"""
import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from thingsboard_gateway.connectors.connector import GatewayApi, InvalidData
from thingsboard_gateway.gateway.validation import name_problem, normalize_record

log = logging.getLogger(__name__)

INVALID_LOG_INTERVAL = 10.0
Stored = Optional[Callable[[bool], None]]


class Ingest(GatewayApi):
    """policy: DataPolicy. tracker: DeliveryTracker. writer: StorageWriter. registry:
    DeviceRegistry. activity: DeviceActivity or None. device: GatewayDevice (announcements).
    router: Router (RPC replies, attribute requests). put_timeout: seconds a full queue
    may hold a connector before its data is dropped (counted, logged)."""

    def __init__(self, policy, stats, tracker, writer, registry, activity, device, router, put_timeout):
        self.policy = policy
        self._stats = stats
        self._tracker = tracker
        self._writer = writer
        self.registry = registry
        self.activity = activity
        self._device = device
        self._router = router
        self._put_timeout = put_timeout
        self._invalid_lock = threading.Lock()
        # A new device is added and announced, and the known devices are announced after a
        # connect, one at a time: a device first seen while the connection opens is then
        # announced exactly once (by the one or the other), never by neither.
        self._announce_lock = threading.Lock()
        self._invalid_logged_at = -INVALID_LOG_INTERVAL
        self._invalid_unlogged = 0
        self.type_of = lambda connector_name: None  # type: Callable[[str], Optional[str]]  a connector's type

    # -- GatewayApi -------------------------------------------------------------------------
    def send_to_storage(self, connector_name, connector_id, data, on_stored=None, prompt=False, delivery=True):
        # type: (str, Any, Dict[str, Any], Stored, bool, bool) -> Any
        report = None
        if isinstance(data, dict):
            if self.policy.denied(connector_name, data.get("deviceName")):
                self._stats.add("events_filtered", 1, connector_name)
                return self._nothing_to_send(on_stored, delivery)
            report = self.policy.report_for(connector_name, data)
        return self.store(connector_name, data, on_stored, prompt, report, self._put_timeout, delivery)

    def send_rpc_reply(self, device, request_id, content):
        # type: (Optional[str], Any, Any) -> None
        if device is None:
            self._device.reply(request_id, content)
        else:
            self._router.send_rpc_reply(device, request_id, content)

    def add_device(self, device_name, device_type, connector):
        # type: (str, str, Any) -> None
        name = connector if isinstance(connector, str) else connector.get_name()
        if self.policy.denied(name, device_name):
            return  # never announced
        problem = name_problem("deviceName", device_name) or name_problem("deviceType", device_type or "default")
        if problem:
            self._stats.add("events_invalid", 1, name)
            self._log_invalid(name, problem)
            return
        self._register(device_name, device_type, name)

    def del_device(self, device_name):
        # type: (str) -> None
        if self.registry.owner(device_name) is not None:
            self._device.disconnect(device_name)  # under the name the platform knows it by
        if self.activity is not None:
            self.activity.forget(device_name)
        self.registry.remove(device_name)

    def request_attributes(self, device_name, keys, callback, shared=True):
        # type: (str, List[str], Callable[[Dict[str, Any]], None], bool) -> int
        return self._router.request_attributes(device_name, keys, callback, shared)

    # -- the way into storage -------------------------------------------------------------
    def _nothing_to_send(self, on_stored, delivery):
        # type: (Stored, bool) -> Any
        token, future = self._tracker.new(delivery)
        if on_stored is not None:
            on_stored(True)
        self._tracker.delivered(token, 0)
        return future

    def store(self, connector_name, data, on_stored, prompt, report, put_timeout, delivery=True):
        # type: (str, Any, Stored, bool, Any, float, bool) -> Any
        """Validate, register the device, queue (past the filter and with the report step
        decided); the Future of send_to_storage."""
        token, future = self._tracker.new(delivery)
        record, problem = normalize_record(data, int(time.time() * 1000), token, report)
        if problem is not None:
            self._stats.add("events_invalid", 1, connector_name)
            self._log_invalid(connector_name, problem)
            if on_stored is not None:
                on_stored(False)
            self._tracker.failed(token, "invalid data: %s" % problem, InvalidData)
            return future
        if record is None:
            if on_stored is not None:
                on_stored(True)
            self._tracker.delivered(token, 0)
            return future  # nothing to send
        self._stats.add("messages_received", 1, connector_name)
        self._stats.add_to(connector_name, "bytes_received", len(record.encoded))
        device, device_type = data["deviceName"], data.get("deviceType") or "default"  # checked above
        self._register(device, device_type, connector_name)
        if self.activity is not None and self.activity.seen(device):
            log.info("Device %s is active again", device)
            self._stats.add("devices_reactivated", 1)
            self._device.announce([self._described(device, device_type, connector_name)])
        if self._writer.submit(record, put_timeout, on_stored, prompt):
            return future
        self._stats.add("events_dropped", 1, connector_name)
        log.error("Storage queue full for %.1f s: dropped data of %s from %s", put_timeout, device, connector_name)
        if on_stored is not None:
            on_stored(False)
        self._tracker.failed(token, "dropped: the storage queue stayed full for %.1f s" % put_timeout)
        return future

    def schedule(self, loop, activity_period):
        # type: (Any, float) -> None
        """Register the inactivity check and the report strategies' periods with the MainLoop."""
        if self.activity is not None:
            loop.every("activity", activity_period, self.check_activity)

        def periods():
            for period_ms in self.policy.unscheduled():
                loop.every(("report", period_ms), period_ms / 1000.0, lambda p=period_ms: self.report_period(p))
        loop.each_round(periods)

    def report_period(self, period_ms):
        # type: (int) -> None
        """The report strategies' re-sends of one period (main thread)."""
        for connector_name, data in self.policy.due(period_ms):
            self.store(connector_name, data, None, False, None, min(self._put_timeout, period_ms / 1000.0))

    def _register(self, device_name, device_type, connector_name):
        # type: (str, str, str) -> None
        """Record a device whose name and type passed the checks; announce it when new."""
        if self.registry.known(device_name, connector_name, device_type):
            return  # every message of a known device: no lock
        with self._announce_lock:
            if self.registry.add(device_name, connector_name, device_type):
                self._device.announce([self._described(device_name, device_type, connector_name)])

    def _described(self, device, device_type, connector_name):
        # type: (str, str, str) -> Any
        """What GatewayDevice.announce takes of one device."""
        return device, device_type, connector_name, self.type_of(connector_name)

    def check_activity(self):
        """Disconnect on the platform every device silent for longer than the timeout (main thread)."""
        for device in self.activity.expired() if self.activity is not None else []:
            log.info("Device %s sent nothing for %.0f s: disconnected on the platform", device, self.activity.timeout)
            self._stats.add("devices_inactive_disconnected", 1)
            self._device.disconnect(device)

    def announce_all(self):
        """Every known device, after a (re)connect (paho's thread)."""
        with self._announce_lock:
            self._device.session_opening()
            self._device.announce([self._described(device, device_type, connector)
                                   for device, connector, device_type in self.registry.items()], now=True)

    def forget_device(self, device_name):
        # type: (str) -> bool
        """ThingsBoard deleted the device: forgotten (registry, platform name, activity),
        so that its next message announces it again. False when it was not known."""
        if self.activity is not None:
            self.activity.forget(device_name)
        return self.registry.remove(device_name, deleted=True)

    def _log_invalid(self, connector_name, problem):
        """One line per INVALID_LOG_INTERVAL with how many were not logged (any thread)."""
        now = time.monotonic()
        with self._invalid_lock:
            if now - self._invalid_logged_at < INVALID_LOG_INTERVAL:
                self._invalid_unlogged += 1
                return
            suppressed, self._invalid_unlogged = self._invalid_unlogged, 0
            self._invalid_logged_at = now
        log.warning("Connector %s sent invalid data: %s%s", connector_name, problem,
                    " (%d more since the last report)" % suppressed if suppressed else "")
