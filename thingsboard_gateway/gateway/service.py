"""GatewayService: builds the pipeline, runs the main thread, and is the `gateway` object
connectors talk to (send_to_storage, send_rpc_reply, add_device, del_device,
request_attributes)."""
import gc
import json
import logging
import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from thingsboard_gateway import __version__
from thingsboard_gateway.config.loader import GatewayConfig
from thingsboard_gateway.connectors.connector import InvalidData
from thingsboard_gateway.gateway.devices import DeviceRegistry
from thingsboard_gateway.gateway.routing import Router
from thingsboard_gateway.gateway.statistics import Statistics
from thingsboard_gateway.gateway.supervisor import Supervisor
from thingsboard_gateway.gateway.systemd import SystemdNotifier
from thingsboard_gateway.gateway.liveness import Watch
from thingsboard_gateway.runtime.liveness import Heart
from thingsboard_gateway.gateway.activity import DeviceActivity
from thingsboard_gateway.gateway.data_policy import DataPolicy
from thingsboard_gateway.gateway.management import Management
from thingsboard_gateway.runtime import allocator
from thingsboard_gateway.runtime.schedule import Schedule
from thingsboard_gateway.gateway.validation import name_problem, normalize_record
from thingsboard_gateway.platform import topics
from thingsboard_gateway.platform.client import PlatformClient
from thingsboard_gateway.gateway.delivery import DeliveryTracker
from thingsboard_gateway.platform import limits as traffic
from thingsboard_gateway.platform.limits import TrafficLimits
from thingsboard_gateway.platform.sender import Sender
from thingsboard_gateway.storage import create_storage
from thingsboard_gateway.storage.writer import StorageWriter

log = logging.getLogger(__name__)

SHUTDOWN_DRAIN_SECONDS = 2.0
INVALID_LOG_INTERVAL = 10.0
ECHO_GRACE_SECONDS = 1.0
# Every so often the allocator gives back pages freed after a burst (runtime/allocator.py).
TRIM_PERIOD = 5.0
SAVE_PERIOD = 1.0  # the device registry is written at most this often (gateway/devices.py)


def _dumps(value):
    return json.dumps(value, separators=(",", ":")).encode()


class GatewayService(object):
    """The whole gateway. Construct, then `run()` on the main thread until `request_stop()`."""

    def __init__(self, config, client_factory=PlatformClient):
        # type: (GatewayConfig, Callable[..., Any]) -> None
        self.config = config
        tb = config.thingsboard
        self.stats = Statistics()
        self.storage = create_storage(config.storage, self.stats)
        self.writer = StorageWriter(self.storage, stats=self.stats)
        data_folder = config.storage.get("data_folder_path") or "./data/"
        self.registry = DeviceRegistry(os.path.join(data_folder, "devices.json"))
        activity = tb["checkingDeviceActivity"]
        self.activity = DeviceActivity(activity["inactivityTimeoutSeconds"]) \
            if activity["checkDeviceInactivity"] else None  # type: Optional[DeviceActivity]
        self._activity_period = activity["inactivityCheckPeriodSeconds"]
        self.client = client_factory(tb, on_message=self._on_platform_message,
                                     on_connected=self._on_platform_connected,
                                     on_lost=lambda: self.router.connection_lost())
        self.router = Router(self._publish, self._connector_of_device, {
            "gateway_ping": lambda params: "pong",
            "gateway_version": lambda params: __version__,
            "gateway_devices": lambda params: {name: c for name, c, _ in self.registry.items()},
            "gateway_stats": lambda params: self.statistics(),
        }, on_echo=self._on_own_request_echoed)
        read_count = config.storage.get("read_records_count", 100)
        if config.storage.get("type") != "memory":
            read_count = config.storage.get("max_read_records_count", read_count)
        self.tracker = DeliveryTracker()
        self.sender = Sender(self.storage, self.client, self.stats, max_read=read_count,
                             max_payload=tb["maxPayloadSizeBytes"],
                             limits=TrafficLimits.combine(traffic.configured(tb, "devices")),
                             min_pack_delay=tb["minPackSendDelayMS"] / 1000.0,
                             min_pack_size=tb["minPackSizeToSend"], max_inflight=tb["maxInflightMessages"],
                             ack_timeout=tb["publishAckTimeoutMs"] / 1000.0, tracker=self.tracker)
        self._own_limits = TrafficLimits.combine(traffic.configured(tb, "gateway"))
        self._own_lock = threading.Lock()
        self._session_limits = None  # type: Optional[Dict[str, Any]]
        self.supervisor = Supervisor(config.connectors, self, config.supervision)
        self.policy = DataPolicy(config, on_new_period=self.supervisor.wake)
        self.restart_requested = None  # type: Optional[str]  why the gateway stops to start again
        self._reload_requested = threading.Event()
        self.management = Management(self)
        self.router.on_own_attributes = self.management.on_own_attributes
        self._put_timeout = config.storage.get("put_timeout_ms", 10000) / 1000.0
        self._stop = threading.Event()
        self.heart = Heart("main")  # the main loop's; it and the data path's threads are watched
        self.watch = Watch(SystemdNotifier(), config.supervision["dataPathStuckMs"] / 1000.0, self.stats)
        for heart in (self.heart, self.sender.heart, self.writer.heart):
            self.watch.add(heart)
        self._invalid_logged_at = -INVALID_LOG_INTERVAL
        self._invalid_unlogged = 0

    # -- the API connectors see --------------------------------------------------------
    def send_to_storage(self, connector_name, connector_id, data, on_stored=None, prompt=False, delivery=True):
        # type: (str, Any, Dict[str, Any], Optional[Callable[[bool], None]], bool, bool) -> Any
        """Validate and queue converted data for delivery; returns a
        concurrent.futures.Future resolved (DeliveryResult) once the platform acknowledged
        every message that carried it, or failed (DeliveryError) when the data is invalid or
        dropped. Blocks up to the storage put timeout when the queue is full
        (backpressure). on_stored(ok) runs on the storage-writer thread once the data is
        durable in storage (committed), or with False if it was not stored. prompt: a sender
        waits for on_stored (commit this data's group at once, not at the next group commit).
        delivery=False: the caller ignores the Future; None is returned and nothing is
        tracked (a Future and its weak reference cost 14 us per message on Python 3.7)."""
        report = None
        if isinstance(data, dict):
            if self.policy.denied(connector_name, data.get("deviceName")):
                self.stats.add("events_filtered", 1, connector_name)
                return self._nothing_to_send(on_stored, delivery)
            report = self.policy.report_for(connector_name, data)
        return self._store(connector_name, data, on_stored, prompt, report, self._put_timeout, delivery)

    def _nothing_to_send(self, on_stored, delivery):
        # type: (Optional[Callable[[bool], None]], bool) -> Any
        token, future = self.tracker.new(delivery)
        if on_stored is not None:
            on_stored(True)
        self.tracker.delivered(token, 0)
        return future

    def _store(self, connector_name, data, on_stored, prompt, report, put_timeout, delivery=True):
        # type: (str, Any, Optional[Callable[[bool], None]], bool, Any, float, bool) -> Any
        token, future = self.tracker.new(delivery)
        record, problem = normalize_record(data, int(time.time() * 1000), token, report)
        if problem is not None:
            self.stats.add("events_invalid", 1, connector_name)
            self._log_invalid(connector_name, problem)
            if on_stored is not None:
                on_stored(False)
            self.tracker.failed(token, "invalid data: %s" % problem, InvalidData)
            return future
        if record is None:
            if on_stored is not None:
                on_stored(True)
            self.tracker.delivered(token, 0)
            return future  # nothing to send
        self.stats.add("messages_received", 1, connector_name)
        self._register(data["deviceName"], data.get("deviceType") or "default", connector_name)  # checked above
        if self.activity is not None and self.activity.seen(data["deviceName"]):
            self._reconnect_device(data["deviceName"], data.get("deviceType") or "default")
        if self.writer.submit(record, put_timeout, on_stored, prompt):
            return future
        self.stats.add("events_dropped", 1, connector_name)
        log.error("Storage queue full for %.1f s: dropped data of %s from %s", put_timeout,
                  data["deviceName"], connector_name)
        if on_stored is not None:
            on_stored(False)
        self.tracker.failed(token, "dropped: the storage queue stayed full for %.1f s" % put_timeout)
        return future

    def _report_period(self, period_ms):
        # type: (int) -> None
        """The report strategies' re-sends of one period (main thread)."""
        for connector_name, data in self.policy.due(period_ms):
            self._store(connector_name, data, None, False, None, min(self._put_timeout, period_ms / 1000.0))

    def send_rpc_reply(self, device, request_id, content):
        # type: (Optional[str], Any, Any) -> None
        """Answer a device RPC (device given) or, with device None, a gateway RPC id."""
        if device is None:
            self._publish(topics.ME_RPC_RESPONSE + str(request_id), _dumps(content))
        else:
            self.router.send_rpc_reply(device, request_id, content)

    def add_device(self, device_name, device_type, connector):
        # type: (str, str, Any) -> None
        """Register a device as owned by `connector` (instance or name); announces it. A name
        or type ThingsBoard cannot take is counted and logged (rate-limited), not announced."""
        name = connector if isinstance(connector, str) else connector.get_name()
        if self.policy.denied(name, device_name):
            return  # never announced
        problem = name_problem("deviceName", device_name) or name_problem("deviceType", device_type or "default")
        if problem:
            self.stats.add("events_invalid", 1, name)
            self._log_invalid(name, problem)
            return
        self._register(device_name, device_type, name)

    def _register(self, device_name, device_type, connector_name):
        # type: (str, str, str) -> None
        """Record a device whose name and type passed the checks; announce it when new."""
        if self.registry.add(device_name, connector_name, device_type) and self.client.is_connected():
            self._publish(topics.CONNECT, _dumps({"device": device_name, "type": device_type or "default"}))

    def _reconnect_device(self, device_name, device_type):
        """A device disconnected for silence sent data again: connect it on the platform."""
        log.info("Device %s is active again", device_name)
        self.stats.add("devices_reactivated", 1)
        if self.client.is_connected():
            self._publish(topics.CONNECT, _dumps({"device": device_name, "type": device_type}))

    def _check_activity(self):
        """Disconnect on the platform every device silent for longer than the timeout."""
        for device in self.activity.expired() if self.activity is not None else []:
            log.info("Device %s sent nothing for %.0f s: disconnected on the platform", device,
                     self.config.thingsboard["checkingDeviceActivity"]["inactivityTimeoutSeconds"])
            self.stats.add("devices_inactive_disconnected", 1)
            if self.client.is_connected():
                self._publish(topics.DISCONNECT, _dumps({"device": device}))

    def del_device(self, device_name):
        # type: (str) -> None
        if self.activity is not None:
            self.activity.forget(device_name)
        if self.registry.remove(device_name):
            self._publish(topics.DISCONNECT, _dumps({"device": device_name}))

    def request_attributes(self, device_name, keys, callback, shared=True):
        # type: (str, List[str], Callable[[Dict[str, Any]], None], bool) -> int
        """Ask the platform for attributes; callback(response dict) runs on the network thread."""
        return self.router.request_attributes(device_name, keys, callback, shared)

    # -- platform side ------------------------------------------------------------------
    def _publish(self, topic, payload):
        # Replies, statistics and announcements go at once; they use up rate-limit tokens
        # (the sender then waits longer) so that the totals stay inside the limits.
        if topic.startswith("v1/devices/me/"):
            with self._own_lock:
                self._own_limits.take(topic == topics.ME_TELEMETRY, 1)
        else:
            self.sender.consume(False, 0)
        return self.client.publish(topic, payload)

    def _on_platform_message(self, topic, payload):
        self.stats.add("platform_messages_received", 1)
        self.router.handle(topic, payload)

    def publish_own_attributes(self, values):
        # type: (Dict[str, Any]) -> None
        """Client attributes of the gateway device (when connected)."""
        if self.client.is_connected():
            self._publish(topics.ME_ATTRIBUTES, _dumps(values))

    def request_own_attributes(self, request_id, keys):
        # type: (int, List[str]) -> None
        """Ask for the gateway device's shared attributes; the answer comes as an update."""
        if self.client.is_connected():
            self._publish(topics.ME_ATTRIBUTES_REQUEST + str(request_id), _dumps({"sharedKeys": ",".join(keys)}))

    def request_restart(self, reason):
        # type: (str) -> None
        """Stop in order, then start again (the CLI re-executes the gateway)."""
        log.info("Restarting: %s", reason)
        self.restart_requested = reason
        self.request_stop()

    def request_reload(self):
        """Check the connector files for changes now (SIGHUP; safe from signal handlers)."""
        self._reload_requested.set()
        self.supervisor.wake()

    def _on_platform_connected(self):
        self.sender.connected()
        timeout = self.config.thingsboard["sessionLimitsTimeoutMs"] / 1000.0
        if timeout > 0:
            self.sender.wait_for_limits(timeout)
            self.router.request_platform("getSessionLimits", {"timeout": int(timeout * 1000)},
                                         self._on_session_limits)
        for device, _, device_type in self.registry.items():
            self._publish(topics.CONNECT, _dumps({"device": device, "type": device_type}))
        self.management.on_connected()
        self.router.connection_ready()  # attribute requests held until now go after the announcements

    def _on_own_request_echoed(self, method):
        """A plain MQTT broker stands in for the platform: an answer to getSessionLimits
        comes soon or never, so wait at most a second more for it."""
        if method == "getSessionLimits":
            self.sender.shorten_limits_wait(ECHO_GRACE_SECONDS)

    def _on_session_limits(self, answer):
        """paho's thread: the platform's getSessionLimits answer (None: a plain broker)."""
        tb = self.config.thingsboard
        if not isinstance(answer, dict) or ("rateLimits" not in answer and "gatewayRateLimits" not in answer):
            log.info("No session limits from the platform (%s); using the configured limits",
                     "a plain MQTT broker" if answer is None else "answer: %.100s" % (answer,))
            self.sender.release_limits()
            return
        self._session_limits = answer
        devices = TrafficLimits.combine(traffic.configured(tb, "devices"), traffic.from_server(answer, "devices"))
        own = TrafficLimits.combine(traffic.configured(tb, "gateway"), traffic.from_server(answer, "gateway"))
        with self._own_lock:
            self._own_limits = own
        max_payload = tb["maxPayloadSizeBytes"]
        if isinstance(answer.get("maxPayloadSize"), int) and answer["maxPayloadSize"] > 0:
            max_payload = min(max_payload, int(answer["maxPayloadSize"] * traffic.SERVER_SHARE))
        max_inflight = tb["maxInflightMessages"]
        if isinstance(answer.get("maxInflightMessages"), int) and answer["maxInflightMessages"] > 0:
            max_inflight = min(max_inflight, max(1, int(answer["maxInflightMessages"] * traffic.SERVER_SHARE)))
        log.info("Session limits from the platform applied: max payload %d bytes, %d messages in flight, "
                 "device traffic %s", max_payload, max_inflight, answer.get("gatewayRateLimits"))
        self.sender.set_limits(devices, max_payload, max_inflight)

    def _connector_of_device(self, device):
        return self.supervisor.by_name(self.registry.owner(device))

    def _log_invalid(self, connector_name, problem):
        now = time.monotonic()
        if now - self._invalid_logged_at < INVALID_LOG_INTERVAL:
            self._invalid_unlogged += 1
            return
        suppressed, self._invalid_unlogged = self._invalid_unlogged, 0
        self._invalid_logged_at = now
        log.warning("Connector %s sent invalid data: %s%s", connector_name, problem,
                    " (%d more since the last report)" % suppressed if suppressed else "")

    # -- statistics ---------------------------------------------------------------------
    def statistics(self):
        # type: () -> Dict[str, Any]
        """Every counter, flat (gateway_stats RPC, the statistics telemetry)."""
        return self.management.gateway_statistics()

    def _report_statistics(self):
        self.management.report_statistics()

    # -- life cycle ---------------------------------------------------------------------
    def start(self):
        """Start storage writer, platform client, sender, then connectors."""
        log.info("ThingsBoard gateway %s starting: platform %s, security %s, storage %s, %d connector(s)",
                 __version__, self.client.address if hasattr(self.client, "address") else "?",
                 self.config.thingsboard["security"]["type"], self.config.storage["type"],
                 len(self.config.connectors))
        self.writer.start()
        self.client.start()
        self.sender.start()
        self.supervisor.start_all()

    def request_stop(self):
        """Ask run() to shut down (safe from signal handlers and other threads)."""
        self._stop.set()
        self.supervisor.wake()

    def run(self):
        """Start, supervise and report statistics until request_stop(); then shut down."""
        self.start()
        # What start-up made (modules, configuration, connectors) lives as long as the
        # process: keep it out of the collector's scans, which otherwise walk it again
        # and again as devices' data churns through the young generations.
        gc.freeze()
        self.watch.notifier.notify("READY=1\nSTATUS=running")
        jobs, actions = Schedule(), {}  # type: Schedule, Dict[Any, Callable[[], None]]
        statistics = self.config.thingsboard["statistics"]
        if statistics["enable"]:
            period = statistics["statsSendPeriodInSeconds"]
            jobs.add("statistics", period, time.monotonic() + period)
            actions["statistics"] = self._report_statistics
        if self.activity is not None:
            jobs.add("activity", self._activity_period, time.monotonic() + self._activity_period)
            actions["activity"] = self._check_activity
        jobs.add("trim", TRIM_PERIOD, time.monotonic() + TRIM_PERIOD)
        actions["trim"] = lambda: self.writer.queued() or allocator.trim()  # after work, not while records queue
        jobs.add("devices", SAVE_PERIOD, time.monotonic() + SAVE_PERIOD)
        actions["devices"] = self.registry.save
        if self.management.reload_period > 0:
            jobs.add("reload", self.management.reload_period, time.monotonic() + self.management.reload_period)
            actions["reload"] = self.management.reload
        self.heart.attach()
        self.watch.start()
        try:
            while not self._stop.is_set():
                self.heart.beat()
                wait = self.supervisor.check()
                for period_ms in self.policy.unscheduled():
                    jobs.add(("report", period_ms), period_ms / 1000.0, time.monotonic() + period_ms / 1000.0)
                    actions[("report", period_ms)] = lambda period_ms=period_ms: self._report_period(period_ms)
                for key in jobs.pop_due():
                    actions[key]()
                if self._reload_requested.is_set():
                    self._reload_requested.clear()
                    self.management.reload()
                due = jobs.next_due()
                managed = self.management.tick()
                if managed is not None:
                    due = managed if due is None else min(due, managed)
                if due is not None:
                    wait = min(wait, max(0.0, due - time.monotonic()))
                self.supervisor.attention.wait(wait)  # a dead connector thread, or stop, cuts it short
                self.supervisor.attention.clear()
        finally:
            self.heart.stopped()
            self.watch.notifier.notify("STOPPING=1")
            self.shutdown()

    def shutdown(self):
        """Close connectors, flush the queue into storage, drain what is quick, disconnect."""
        log.info("Shutting down")
        self.watch.stop()
        self.supervisor.stop_all()
        self.writer.stop()
        if self.config.storage["type"] == "memory" and self.client.is_connected() and len(self.storage):
            if not self.sender.wait_idle(SHUTDOWN_DRAIN_SECONDS):
                log.warning("%d records were not delivered before shutdown (memory storage)", len(self.storage))
        self.sender.stop()
        self.client.stop()
        self.storage.close()
        self.registry.save()
        log.info("Stopped")
