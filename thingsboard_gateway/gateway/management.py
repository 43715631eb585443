"""Management: what ThingsBoard's gateway pages need of the gateway and what an operator
does on the board, in one place: remote configuration (remote_config.py), remote logs
(remote_logs.py), statistics in upstream's shapes (machine_stats.py) and hot reload of
connector files (checkConnectorsConfigurationInSeconds, SIGHUP). It publishes through the
GatewayDevice and changes connectors through the ConnectorSet. Everything here runs on
the main thread but the hooks marked otherwise."""
import logging
import threading
import time
from typing import Any, Dict, List, Optional

from thingsboard_gateway import FORMAT_VERSION, __version__
from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.store import canonical, read_json_or_none
from thingsboard_gateway.gateway.error_counts import CHECK_PERIOD, ErrorCounts, connector_errors, statistics_of
from thingsboard_gateway.gateway.machine_stats import MachineStats, connector_stats, service_stats
from thingsboard_gateway.gateway.remote_config import RemoteConfiguration
from thingsboard_gateway.gateway.remote_logs import LEVELS, RemoteLogs
from thingsboard_gateway.gateway.software_update import SoftwareUpdates
from thingsboard_gateway.platform.client import try_platform

log = logging.getLogger(__name__)


def remote_logging_connectors(specs):
    # type: (Any) -> Dict[str, Any]
    """name -> (type, level) of the connectors whose files enable remote logging."""
    out = {}
    for spec in specs:
        content = spec.config if isinstance(spec.config, dict) else {}
        if content.get("enableRemoteLogging"):
            level = LEVELS.get(str(content.get("logLevel", "INFO")).upper()) or logging.INFO
            out[spec.name] = (spec.type, level)
    return out


class Management(object):
    """config: the GatewayConfig. connectors: the ConnectorSet. device: the GatewayDevice.
    stats: Statistics. gauges() -> current figures (devices_connected, events_queued,
    values_held_back). wake(): the main loop's. request_restart(reason)."""

    def __init__(self, config, connectors, device, stats, gauges, wake, request_restart):
        self.config = config
        self.connectors = connectors
        self.device = device
        self.stats = stats
        self._gauges = gauges
        self.remote = RemoteConfiguration(config, connectors, device, wake, request_restart, trial=try_platform)
        self.logs = RemoteLogs(self._send_logs, wake, remote_logging_connectors(connectors.specs))
        self.remote.on_remote_level = self.logs.set_remote_level
        self.remote.on_logs = self.logs.install
        connectors.on_change(lambda specs: self.logs.set_connectors(remote_logging_connectors(specs)))
        self.logs.install()
        data_folder = config.storage.get("data_folder_path") or "./data/"
        self.machine = MachineStats(data_folder)
        self.errors = ErrorCounts(connectors, stats, device.publish_telemetry)
        self.updates = SoftwareUpdates(config.thingsboard["softwareUpdates"], device, data_folder, __version__)
        self.reload_period = float(config.thingsboard.get("checkConnectorsConfigurationInSeconds") or 0)
        self._reload_refused = {}  # type: Dict[str, str]
        self._logs_due = None  # type: Optional[float]
        self._session_new = threading.Event()  # a connect: the once-per-session attributes are due
        self._reload_asked = threading.Event()
        self._wake = wake

    def schedule(self, loop):
        # type: (Any) -> None
        """Register this module's jobs with the MainLoop: the tick (remote changes, logs,
        a reload asked for), statistics and the periodic check of connector files."""
        loop.each_round(self.tick)
        loop.every("errors", CHECK_PERIOD, lambda: self.errors.check(self.device.connected()))
        statistics = self.config.thingsboard["statistics"]
        if statistics["enable"]:
            loop.every("statistics", statistics["statsSendPeriodInSeconds"], self.report_statistics)
        if self.reload_period > 0:
            loop.every("reload", self.reload_period, self.reload)

    def request_reload(self):
        """Check the connector files for changes now (SIGHUP; safe from signal handlers)."""
        self._reload_asked.set()
        self._wake()

    # -- hooks ------------------------------------------------------------------------------
    def on_connected(self):
        """paho's thread, after each connect."""
        self.errors.connected()
        self._session_new.set()
        self._wake()
        if self.remote.enabled:
            self.remote.on_connected()

    def on_own_attributes(self, content):
        # type: (Dict[str, Any]) -> None
        """paho's thread: the gateway device's shared attributes."""
        self.remote.on_attributes(content)
        self.updates.on_attributes(content)

    def tick(self):
        # type: () -> Optional[float]
        """Main thread, every loop: queued remote changes, remote logs; returns the
        monotonic time it wants to run again (None: when woken)."""
        if self._reload_asked.is_set():
            self._reload_asked.clear()
            self.reload()
        if self._session_new.is_set() and self.device.connected():
            self._session_new.clear()
            # ThingsBoard's gateway pages pick their forms by `Version`: the configuration
            # format we speak (docs/REMOTE.md); our own release beside it.
            self.device.publish_attributes(dict(self.machine.once(), Version=FORMAT_VERSION,
                                                gatewayRelease=__version__))
            self.updates.on_connected()
        self.remote.process()
        if self.logs.installed and self.device.connected():  # held while away (bounded): sent after the connect
            self._logs_due = self.logs.send_pending()
        return self._logs_due

    def gateway_statistics(self):
        # type: () -> Dict[str, Any]
        """Every counter of the gateway, its connectors and this module, flat."""
        counters = self.stats.snapshot()
        values = dict(counters)  # every counter (values_rejected, storage_recovery_dropped, ...)
        values.update({
            "messages_received": counters.get("messages_received", 0),
            "messages_sent": counters.get("messages_sent", 0),
            "events_dropped": counters.get("events_dropped", 0),
            "events_invalid": counters.get("events_invalid", 0),
            "platform_connected": self.device.connected(),
        })  # type: Dict[str, Any]
        values.update(self._gauges())
        values.update(self.logs.statistics())
        values.update({"remote_changes_applied": self.remote.applied, "remote_changes_rejected": self.remote.rejected})
        for name, state in self.connectors.states().items():
            per = self.stats.connector_snapshot(name)
            values[name + "_state"] = state["state"]
            values[name + "_messages_received"] = per.get("messages_received", 0)
            values[name + "_restarts"] = state["restarts"]
            if state["last_error"]:
                values[name + "_last_error"] = state["last_error"][:200]
            for key, count in statistics_of(self.connectors.by_name(name), failed=log.error).items():
                values["%s_%s" % (name, key)] = count
        return values

    def report_statistics(self):
        """Each statistics period: our flat counters, then upstream's shapes."""
        values = self.gateway_statistics()
        log.info("Statistics: %s", ", ".join("%s=%s" % kv for kv in sorted(values.items())))
        if not self.device.connected():
            return
        self.device.publish_telemetry({"ts": int(time.time() * 1000), "values": values})
        counters = self.stats.snapshot()
        connectors = {}
        for name, state in self.connectors.states().items():
            # our `<name>_*` figures, the connector's own statistics among them (asked once a period)
            flat = {k[len(name) + 1:]: v for k, v in values.items() if k.startswith(name + "_")}
            flat["state"] = state["state"]
            per = self.stats.connector_snapshot(name)
            connectors[name] = connector_stats(per, flat, connector_errors(flat, state["restarts"], per))
        self.device.publish_telemetry({"ts": int(time.time() * 1000), "values": {
            "machineStats": self.machine.machine(counters),
            "serviceStats": service_stats(counters, values.get("events_queued", 0)),
            "connectorsStats": connectors}})

    def _send_logs(self, entries):
        # type: (List[Dict[str, Any]]) -> None
        self.device.publish_telemetry(entries)

    # -- hot reload -------------------------------------------------------------------------
    def reload(self):
        """A connector file edited on disk: validated and applied with the remote rules
        (identical -> untouched; invalid -> the old one keeps running, one line why)."""
        for spec in list(self.connectors.specs):
            content = read_json_or_none(spec.config_path)
            key = canonical(content)
            if key == self.remote.on_disk.get(spec.name):
                continue
            if not isinstance(content, dict):
                self._refuse_reload(spec.name, "%s: cannot be read or is not a JSON object" % spec.file)
                continue
            value = {"type": spec.type, "configuration": spec.file, "configurationJson": content}
            try:
                new_spec, _ = self.remote.checked_local(spec, value)
            except ConfigError as e:
                self._refuse_reload(spec.name, str(e))
                continue
            self.remote.on_disk[spec.name] = key
            self._reload_refused.pop(spec.name, None)
            log.info("Connector %s: %s changed on disk; restarting it on the new configuration", spec.name, spec.file)
            self.connectors.put(new_spec)

    def _refuse_reload(self, name, reason):
        if self._reload_refused.get(name) != reason:
            log.warning("Connector %s keeps running on its old configuration: %s", name, reason)
            self._reload_refused[name] = reason

