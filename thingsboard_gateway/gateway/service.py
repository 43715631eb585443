"""GatewayService: the composition root. It builds the parts, wires them, starts them in
order and stops them in the reverse; it does no work of its own.

How a value gets from a device to ThingsBoard (docs/DESIGN.md has the diagram):
connector thread -> converter -> Ingest.send_to_storage (gateway/ingest.py: filter, report
strategy, validation, device registry, queue) -> StorageWriter (storage/writer.py) ->
storage -> Sender (platform/sender.py: pack, rate limits, publish, ack on PUBACK).
And back: paho's thread -> Router (gateway/routing.py) -> the owning connector.

The parts and their roles: ConnectorSet (the connectors, supervised), GatewayDevice (the
gateway's own traffic), Management (remote configuration, logs, statistics, hot reload),
MainLoop (the main thread's jobs), Watch (liveness and the systemd watchdog).
"""
import gc
import logging
import os
import time
from typing import Any, Callable, Dict, Optional

from thingsboard_gateway import __version__
from thingsboard_gateway.config import update_state
from thingsboard_gateway.config.loader import GatewayConfig
from thingsboard_gateway.gateway.activity import DeviceActivity
from thingsboard_gateway.gateway.connector_set import ConnectorSet
from thingsboard_gateway.gateway.data_policy import DataPolicy
from thingsboard_gateway.gateway.delivery import DeliveryTracker
from thingsboard_gateway.gateway.devices import DeviceRegistry
from thingsboard_gateway.gateway.gateway_device import GatewayDevice
from thingsboard_gateway.gateway.gateway_rpc import GatewayMethods
from thingsboard_gateway.gateway.host import Reboot
from thingsboard_gateway.gateway.ingest import Ingest
from thingsboard_gateway.gateway.liveness import Watch
from thingsboard_gateway.gateway.main_loop import MainLoop
from thingsboard_gateway.gateway.management import Management
from thingsboard_gateway.gateway.routing import Router
from thingsboard_gateway.gateway.statistics import Statistics
from thingsboard_gateway.gateway.systemd import SystemdNotifier
from thingsboard_gateway.platform.client import PlatformClient
from thingsboard_gateway.platform.sender import sender_for
from thingsboard_gateway.runtime import allocator
from thingsboard_gateway.storage import create_storage
from thingsboard_gateway.storage.writer import StorageWriter

log = logging.getLogger(__name__)

SHUTDOWN_DRAIN_SECONDS = 2.0
TRIM_PERIOD = 5.0  # the allocator gives back pages freed after a burst (runtime/allocator.py)
SAVE_PERIOD = 1.0  # the device registry is written at most this often (gateway/devices.py)
GUARD_CHECK_PERIOD = 1.0  # under the update guard: is it still our parent?


class GatewayService(object):
    """The whole gateway. Construct, then `run()` on the main thread until `request_stop()`."""

    def __init__(self, config, client_factory=PlatformClient):
        # type: (GatewayConfig, Callable[..., Any]) -> None
        self.config = config
        tb, storage = config.thingsboard, config.storage
        self.loop = MainLoop()
        self.stats = Statistics()
        self.storage = create_storage(storage, self.stats)
        self.writer = StorageWriter(self.storage, stats=self.stats)
        self.registry = DeviceRegistry(os.path.join(storage.get("data_folder_path") or "./data/", "devices.json"))
        activity = tb["checkingDeviceActivity"]
        self.activity = DeviceActivity(activity["inactivityTimeoutSeconds"]) \
            if activity["checkDeviceInactivity"] else None  # type: Optional[DeviceActivity]
        self.client = client_factory(tb, on_message=self._on_platform_message, on_connected=self._on_connected,
                                     on_lost=self._on_lost)
        if config.credentials == "saved":  # revoked: say so, and never re-provision by itself
            self.client.refused_hint = ("the credentials provisioning saved in %s were refused (revoked on the "
                                        "platform?); to provision again, delete that file and restart the gateway"
                                        % config.credentials_path)
        self.tracker = DeliveryTracker()
        self.sender = sender_for(self.storage, self.client, self.stats, tb, storage, self.tracker)
        self.device = GatewayDevice(self.client, self.sender, tb)
        self.sender.names = self.device.names = self.registry.names  # devices renamed on the platform
        owner = lambda device: self.connectors.by_name(self.registry.owner(device))  # noqa: E731
        methods = GatewayMethods(self.registry, self.statistics, lambda device: self.ingest.forget_device(device),
                                 self.request_restart, Reboot(), tb["handleDeviceRenaming"])
        self.router = Router(self.device.publish, owner, methods.table(), on_echo=self.device.on_own_request_echoed,
                             connectors_of=lambda kind, cid: self.connectors.of_type(kind, cid),
                             names=self.registry.names)
        self.policy = DataPolicy(config, on_new_period=self.loop.wake)
        self.ingest = Ingest(self.policy, self.stats, self.tracker, self.writer, self.registry, self.activity,
                             self.device, self.router, storage.get("put_timeout_ms", 10000) / 1000.0)
        self.connectors = ConnectorSet(config.connectors, self.ingest, config.supervision, self.loop.wake)
        self.ingest.type_of = self.connectors.type_of
        self.connectors.on_change(self.policy.connectors_changed)
        self.management = Management(config, self.connectors, self.device, self.stats, self._gauges, self.loop.wake,
                                     self.request_restart)
        self.router.on_own_attributes = self.management.on_own_attributes
        self.router.on_sw_chunk = self.management.updates.on_chunk
        self.router.on_ota_error = self.management.updates.on_error
        methods.describe_updates = self.management.updates.describe
        self.management.updates.on_staged = self.request_update
        self.restart_requested = None  # type: Optional[str]  why the gateway stops to start again
        self.update_requested = False  # stopped for the update guard (update_guard.py)
        self.watch = Watch(SystemdNotifier(), config.supervision["dataPathStuckMs"] / 1000.0, self.stats)
        for heart in (self.loop.heart, self.sender.heart, self.writer.heart):
            self.watch.add(heart)
        self._schedule(tb)

    def _schedule(self, tb):
        # type: (Dict[str, Any]) -> None
        """The main loop's jobs: each part registers its own."""
        self.loop.each_round(lambda: time.monotonic() + self.connectors.check())  # supervision
        self.management.schedule(self.loop)
        self.ingest.schedule(self.loop, tb["checkingDeviceActivity"]["inactivityCheckPeriodSeconds"])
        self.loop.every("trim", TRIM_PERIOD, lambda: self.writer.queued() or allocator.trim())  # not while busy
        self.loop.every("devices", SAVE_PERIOD, self.registry.save)
        guard = os.environ.get(update_state.GUARD_ENV, "")
        if guard.isdigit():  # run by the update guard: stop in order if it is gone (killed)
            self.loop.every("guard", GUARD_CHECK_PERIOD, lambda: self._check_guard(int(guard)))

    def _check_guard(self, pid):
        # type: (int) -> None
        if os.getppid() != pid:
            log.warning("The update guard (pid %d) is gone: stopping", pid)
            self.request_stop()

    def _gauges(self):
        # type: () -> Dict[str, Any]
        return {"devices_connected": len(self.registry), "events_queued": len(self.storage) + self.writer.queued(),
                "values_held_back": self.policy.reports.suppressed, "threads_stuck_now": len(self.watch.stuck())}

    def statistics(self):
        # type: () -> Dict[str, Any]
        """Every counter, flat (gateway_stats RPC, the statistics telemetry)."""
        return self.management.gateway_statistics()

    # -- platform side (paho's thread) -----------------------------------------------------
    def _on_platform_message(self, topic, payload):
        self.stats.add("platform_messages_received", 1)
        self.router.handle(topic, payload)

    def _on_lost(self):
        self.device.connection_lost()
        self.router.connection_lost()

    def _on_connected(self):
        self.sender.connected()
        self.device.ask_session_limits(self.router.request_platform)
        self.ingest.announce_all()
        self.management.on_connected()
        self.router.connection_ready()  # attribute requests held until now go after the announcements

    # -- life cycle -----------------------------------------------------------------------
    def request_restart(self, reason):
        # type: (str) -> None
        """Stop in order, then start again (the CLI re-executes the gateway)."""
        log.info("Restarting: %s", reason)
        self.restart_requested = reason
        self.request_stop()

    def request_update(self):
        """A verified package waits: stop in order, then the CLI hands over to the update guard."""
        self.update_requested = True
        self.request_stop()

    def request_reload(self):
        """Check the connector files for changes now (SIGHUP; safe from signal handlers)."""
        self.management.request_reload()

    def request_stop(self):
        """Ask run() to shut down (safe from signal handlers and other threads)."""
        self.loop.stop()

    def start(self):
        """Start storage writer, platform client, sender, then connectors."""
        log.info("ThingsBoard gateway %s starting: platform %s, security %s, storage %s, %d connector(s)",
                 __version__, getattr(self.client, "address", "?"), self.config.thingsboard["security"]["type"],
                 self.config.storage["type"], len(self.connectors.specs))
        self.writer.start()
        self.client.start()
        self.sender.start()
        self.connectors.start_all()

    def run(self):
        """Start, then the main loop until request_stop(); then shut down."""
        self.start()
        # What start-up made lives as long as the process: keep it out of the collector's
        # scans, which otherwise walk it again and again as devices' data churns.
        gc.freeze()
        self.watch.notifier.notify("READY=1\nSTATUS=running")
        self.watch.start()
        try:
            self.loop.run()
        finally:
            self.watch.notifier.notify("STOPPING=1")
            self.shutdown()

    def shutdown(self):
        """Close connectors, flush the queue into storage, drain what is quick, disconnect."""
        log.info("Shutting down")
        self.watch.stop()
        self.management.updates.stop()
        self.connectors.stop_all()
        self.writer.stop()
        if self.config.storage["type"] == "memory" and self.client.is_connected() and len(self.storage):
            if not self.sender.wait_idle(SHUTDOWN_DRAIN_SECONDS):
                log.warning("%d records were not delivered before shutdown (memory storage)", len(self.storage))
        self.sender.stop()
        self.client.stop()
        self.storage.close()
        self.registry.save()
        log.info("Stopped")
