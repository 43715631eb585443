"""RemoteConfiguration: ThingsBoard's gateway pages read and change this gateway's
configuration through the gateway device's own attributes (docs/REMOTE.md has the wire
protocol and the rules).

Threads: paho's network thread only queues (a connect, a shared-attribute update); the
main thread applies, between supervision rounds, so no file or connector work runs on
the platform connection's thread. A trial connection with new platform settings runs on
a thread of its own and queues its outcome.

Safe where upstream is not: a change identical in content to what runs is left alone; a
change is validated with the same validators as `check` before anything is written; a
rejected change leaves files and connectors as they were and is reported in the client
attribute `remoteConfigurationErrors` ({name: one-line reason}) and logged once; files
are written atomically with backups (config/store.py); a remote change never brings in a
program: custom connector and converter classes and statistics commands come only from
local files."""
import itertools
import logging
import os
import queue
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.loader import ConnectorSpec, load_gateway_config
from thingsboard_gateway.config.store import canonical, read_json_or_none, write_json
from thingsboard_gateway.gateway.remote_checks import LIFTED, LIFTED_ABSENT, checked_connector, without_ts

log = logging.getLogger(__name__)

ERRORS_KEY = "remoteConfigurationErrors"
SECTIONS = ("general_configuration", "storage_configuration", "grpc_configuration", "logs_configuration")
CONNECTION_KEYS = ("host", "port", "security")
# Keys of `thingsboard` that run a program: only the local file sets them, a remote change
# of any of them is refused (what, [path under thingsboard]).
LOCAL_ONLY = (("statistics commands", [("statistics", "commands")]),
              ("softwareUpdates.installCommand and rollbackCommand",
               [("softwareUpdates", "installCommand"), ("softwareUpdates", "rollbackCommand")]))


def _at(section, path):
    # type: (Any, Tuple[str, ...]) -> Any
    for key in path:
        section = section.get(key) if isinstance(section, dict) else None
    return section


class RemoteConfiguration(object):
    """config: the GatewayConfig started with (its files, its sections). connectors: the
    ConnectorSet (the only way connectors change). device: the GatewayDevice (its
    attributes). wake(): the main loop's wake-up. request_restart(reason): stop in order
    and start again. Call `on_connected()` and `on_attributes(content)` from any thread;
    `process()` on the main thread when woken."""

    def __init__(self, config, connectors, device, wake, request_restart, trial=None, clock=time.time):
        # type: (Any, Any, Any, Callable[[], None], Callable[[str], None], Optional[Callable[[Dict[str, Any], float], Optional[str]]], Callable[[], float]) -> None
        self.config = config
        self.connectors = connectors
        self._device = device
        self._wake = wake
        self._request_restart = request_restart
        tb = self.config.thingsboard
        self.enabled = bool(tb.get("remoteConfiguration"))
        self.trial_seconds = float(tb.get("remoteConfigurationTrialSeconds", 60))
        self._trial = trial
        self._clock = clock
        self._queue = queue.Queue(1000)  # type: queue.Queue
        self._published = {}  # type: Dict[str, str]  key -> canonical form of our last publish (echo filter)
        self._errors = {}  # type: Dict[str, str]
        self._known = {}  # type: Dict[str, Dict[str, Any]]  connector attributes seen from the platform
        self._active = None  # type: Optional[List[str]]
        self._ids = itertools.count(1)
        self._refusal_logged = False
        self.applied = 0
        self.rejected = 0
        self.on_logs = None  # type: Optional[Callable[[], None]]  called after logging was reconfigured
        self.on_remote_level = None  # type: Optional[Callable[[Any], None]]
        # name -> canonical content of its file as last loaded or written (hot reload's baseline)
        self.on_disk = {spec.name: canonical(read_json_or_none(spec.config_path))
                        for spec in connectors.specs}  # type: Dict[str, str]

    # -- any thread -------------------------------------------------------------------------
    def on_connected(self):
        self._put(("report", None))

    def on_attributes(self, content):
        # type: (Dict[str, Any]) -> None
        self._put(("apply", content))

    def _put(self, item):
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            log.warning("Remote configuration: too many updates waiting; one dropped")
        self._wake()

    # -- main thread ------------------------------------------------------------------------
    def process(self):
        """Handle what was queued (main thread)."""
        while True:
            try:
                kind, content = self._queue.get_nowait()
            except queue.Empty:
                return
            try:
                if kind == "report":
                    self.report()
                elif kind == "apply":
                    self.apply(content)
                elif kind == "trial":
                    self._trial_done(*content)
            except Exception:  # a bug here must not end the main thread
                log.exception("Remote configuration: handling %s failed", kind)

    def _publish(self, values):
        # type: (Dict[str, Any]) -> None
        for key, value in values.items():
            self._published[key] = canonical(value)
        self._device.publish_attributes(values)

    def report(self):
        """The current configuration as client attributes, then a request for the shared ones."""
        now = int(self._clock() * 1000)
        raw = read_json_or_none(self.config.path) or {}
        logs = read_json_or_none(os.path.join(self.config.folder, "logs.json")) or {}
        self._publish({"general_configuration": dict(raw.get("thingsboard") or {}, ts=now),
                       "storage_configuration": dict(raw.get("storage") or {}, ts=now),
                       "grpc_configuration": dict(raw.get("grpc") or {}, ts=now),
                       "logs_configuration": dict(logs, ts=now),
                       "active_connectors": [spec.name for spec in self.connectors.specs]})
        for spec in self.connectors.specs:
            self._publish({spec.name: self._connector_attribute(spec, now)})
        names = ["general_configuration", "storage_configuration", "logs_configuration", "active_connectors",
                 "RemoteLoggingLevel", "deleted"] + [spec.name for spec in self.connectors.specs]
        self._device.request_attributes(next(self._ids), names)

    def _connector_attribute(self, spec, now):
        # type: (ConnectorSpec, int) -> Dict[str, Any]
        content = read_json_or_none(spec.config_path) or {}
        value = {"name": spec.name, "type": spec.type, "configuration": spec.file, "ts": now}
        for key in LIFTED:
            if key in content:
                value[key] = content.pop(key)
        for key, absent in LIFTED_ABSENT.items():
            value.setdefault(key, absent)
        content.setdefault("id", spec.id)  # the connector RPC page sends it back as connectorId
        value["configurationJson"] = content
        return value

    def apply(self, content):
        # type: (Dict[str, Any]) -> None
        """A shared-attribute update (or the answer to our request)."""
        changes = {k: v for k, v in content.items()
                   if not (k in self._published and canonical(v) == self._published[k])}  # not our own echo
        if not changes:
            return
        if "RemoteLoggingLevel" in changes and self.on_remote_level is not None:
            self.on_remote_level(changes["RemoteLoggingLevel"])  # remote logs are not configuration
            if self.enabled:
                self._publish({"RemoteLoggingLevel": changes["RemoteLoggingLevel"]})
        if isinstance(changes.get("deleted"), list):
            # ThingsBoard deletes other shared attributes too (sw_url with every OTA assignment):
            # only connectors' names are a connector deletion.
            names = [n for n in changes["deleted"] if isinstance(n, str) and self.connectors.has(n)]
            if names:
                changes["deleted"] = names
            else:
                del changes["deleted"]
        if not self.enabled:
            handled = [k for k in changes if k in SECTIONS or k in ("active_connectors", "deleted")
                       or (isinstance(changes[k], dict) and "configurationJson" in changes[k])]
            if handled:
                reason = "remoteConfiguration is false in tb_gateway.json: remote changes are refused"
                if not self._refusal_logged:
                    log.warning("Remote configuration: %s (%s)", reason, ", ".join(sorted(handled)))
                    self._refusal_logged = True
                for key in handled:
                    self._errors[key] = reason
                self._publish({ERRORS_KEY: dict(self._errors)})
            return
        if "logs_configuration" in changes:
            self._apply_logs(changes["logs_configuration"])
        for name, value in changes.items():
            if isinstance(value, dict) and "configurationJson" in value:
                self._known[name] = value
                if self._active is None or name in self._active:
                    self._apply_connector(name, value)
        if isinstance(changes.get("active_connectors"), list):
            self._apply_active([n for n in changes["active_connectors"] if isinstance(n, str)])
        if isinstance(changes.get("deleted"), list):
            for name in changes["deleted"]:
                if isinstance(name, str) and self.connectors.has(name):
                    self._disable(name)
        for section, key in (("storage_configuration", "storage"), ("general_configuration", "thingsboard")):
            if section in changes:
                self._apply_main_section(section, key, changes[section])

    # -- outcomes ---------------------------------------------------------------------------
    def _reject(self, name, reason):
        # type: (str, str) -> None
        self.rejected += 1
        if self._errors.get(name) != reason:
            log.warning("Remote configuration of %s rejected: %s", name, reason)
        self._errors[name] = reason
        self._publish({ERRORS_KEY: dict(self._errors)})

    def _applied(self, name, echo):
        # type: (str, Dict[str, Any]) -> None
        self.applied += 1
        log.info("Remote configuration of %s applied", name)
        if self._errors.pop(name, None) is not None:
            echo = dict(echo, **{ERRORS_KEY: dict(self._errors)})
        self._publish(echo)

    # -- connectors -------------------------------------------------------------------------
    def _apply_connector(self, name, value):
        # type: (str, Dict[str, Any]) -> None
        spec = self.connectors.spec(name)
        try:
            new_spec, content = self._checked_connector(name, value, spec)
        except ConfigError as e:
            self._reject(name, str(e))
            return
        if spec is not None and spec.type == new_spec.type and spec.file == new_spec.file \
                and self.on_disk.get(name) == canonical(content) \
                and self.connectors.has(name):
            return  # identical to what it runs on: the running connector is not touched
        try:
            write_json(new_spec.config_path, content)
            self._edit_connectors(lambda entries: self._put_entry(entries, new_spec))
        except OSError as e:
            self._reject(name, "cannot write %s: %s" % (new_spec.file, e))
            return
        self.on_disk[name] = canonical(content)
        self.connectors.put(new_spec)
        self._applied(name, {name: value, "active_connectors": [s.name for s in self.connectors.specs]})

    def checked_local(self, spec, value):
        # type: (ConnectorSpec, Dict[str, Any]) -> Tuple[ConnectorSpec, Dict[str, Any]]
        """A connector file edited on disk, checked as `check` would (its classes are local)."""
        return self._checked_connector(spec.name, value, spec, local=True)

    def _checked_connector(self, name, value, spec, local=False):
        # type: (str, Dict[str, Any], Optional[ConnectorSpec], bool) -> Tuple[ConnectorSpec, Dict[str, Any]]
        return checked_connector(self.config, name, value, spec, local, self.connectors.specs)

    def _apply_active(self, names):
        # type: (List[str]) -> None
        self._active = names
        for spec in list(self.connectors.specs):
            if spec.name not in names:
                self._disable(spec.name)
        missing = []
        for name in names:
            if any(s.name == name for s in self.connectors.specs):
                continue
            if name in self._known:
                self._apply_connector(name, self._known[name])
            else:
                missing.append(name)
        if missing:
            self._device.request_attributes(next(self._ids), missing)
        self._publish({"active_connectors": [s.name for s in self.connectors.specs]})

    def _disable(self, name):
        # type: (str) -> None
        try:
            self._edit_connectors(lambda entries: [e for e in entries if e.get("name") != name])
        except OSError as e:
            self._reject(name, "cannot write tb_gateway.json: %s" % e)
            return
        self.connectors.remove(name)
        self._applied(name, {"active_connectors": [s.name for s in self.connectors.specs]})

    def _edit_connectors(self, change):
        # type: (Callable[[List[Dict[str, Any]]], List[Dict[str, Any]]]) -> None
        raw = read_json_or_none(self.config.path)
        if not isinstance(raw, dict):
            raise OSError("tb_gateway.json cannot be read")
        raw["connectors"] = change(list(raw.get("connectors") or []))
        write_json(self.config.path, raw)

    @staticmethod
    def _put_entry(entries, spec):
        # type: (List[Dict[str, Any]], ConnectorSpec) -> List[Dict[str, Any]]
        entry = {"name": spec.name, "type": spec.type, "configuration": spec.file}
        if spec.class_name:
            entry["class"] = spec.class_name
        out = [dict(e, **entry) if e.get("name") == spec.name else e for e in entries]
        return out if any(e.get("name") == spec.name for e in entries) else out + [entry]

    # -- the main file's sections and logs.json ---------------------------------------------
    def _apply_main_section(self, section, key, value):
        # type: (str, str, Any) -> None
        if not isinstance(value, dict):
            self._reject(section, "expected an object")
            return
        raw = read_json_or_none(self.config.path)
        if not isinstance(raw, dict):
            self._reject(section, "tb_gateway.json cannot be read")
            return
        candidate = dict(raw, **{key: without_ts(value)})
        if key == "thingsboard":
            for what, paths in LOCAL_ONLY:
                if any(canonical(_at(raw.get("thingsboard"), p)) != canonical(_at(candidate["thingsboard"], p))
                       for p in paths):
                    self._reject(section, "%s come only from local files" % what)
                    return
        try:
            new = self._validated(candidate)
        except ConfigError as e:
            self._reject(section, str(e))
            return
        current = self.config.thingsboard if key == "thingsboard" else self.config.storage
        if canonical(getattr(new, key)) == canonical(current):
            return  # identical in content
        if key == "thingsboard" and any(canonical(new.thingsboard[k]) != canonical(current[k])
                                        for k in CONNECTION_KEYS):
            self._start_trial(section, candidate, new.thingsboard, value)
            return
        self._commit_main(section, candidate, value)

    def _validated(self, candidate):
        # type: (Dict[str, Any]) -> Any
        """The candidate main file through the loader `check` uses (certificate paths are
        resolved in the config folder, as they will be)."""
        path = os.path.join(self.config.folder, ".tb_gateway.candidate.json")
        try:
            write_json(path, candidate)
            return load_gateway_config(path, env={}, load_connectors=False)
        except OSError as e:
            raise ConfigError("tb_gateway.json", "", "cannot check the change: %s" % e)
        finally:
            try:
                os.remove(path)
            except OSError:
                pass

    def _start_trial(self, section, candidate, thingsboard, value):
        if self._trial is None:
            self._commit_main(section, candidate, value)
            return
        log.info("Remote configuration: trying the new platform settings (%s:%s) for up to %.0f s",
                 thingsboard["host"], thingsboard["port"], self.trial_seconds)

        def run():
            reason = self._trial(thingsboard, self.trial_seconds)
            self._put(("trial", (section, candidate, value, reason)))
        threading.Thread(target=run, name="platform-trial", daemon=True).start()

    def _trial_done(self, section, candidate, value, reason):
        if reason is not None:
            self._reject(section, "kept the old platform settings: the new ones failed: %s" % reason)
            return
        self._commit_main(section, candidate, value)

    def _commit_main(self, section, candidate, value):
        try:
            write_json(self.config.path, candidate)
        except OSError as e:
            self._reject(section, "cannot write tb_gateway.json: %s" % e)
            return
        self._applied(section, {section: value})
        self._request_restart("%s changed remotely" % section)

    def _apply_logs(self, value):
        # type: (Any) -> None
        from thingsboard_gateway.config.logs import setup_logging
        path = os.path.join(self.config.folder, "logs.json")
        old = read_json_or_none(path)
        new = without_ts(value) if isinstance(value, dict) else None
        if new is None:
            self._reject("logs_configuration", "expected the logging configuration (an object)")
            return
        if canonical(new) == canonical(old):
            return
        try:
            write_json(path, new)
            setup_logging(self.config.folder)
        except (ConfigError, OSError) as e:
            if old is not None:
                write_json(path, old)
            else:
                os.remove(path)
            setup_logging(self.config.folder)
            if self.on_logs is not None:
                self.on_logs()
            self._reject("logs_configuration", str(e))
            return
        if self.on_logs is not None:
            self.on_logs()
        self._applied("logs_configuration", {"logs_configuration": value})
