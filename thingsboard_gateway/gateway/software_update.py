"""Updates of the gateway itself from ThingsBoard's software OTA (`thingsboard.softwareUpdates`):
the assignment, the download by chunks, the verification and the states the OTA pages show.

Protocol (ThingsBoard's MQTT OTA, as its server and the tb-mqtt-client SDK speak it): on
every connect the gateway reports `current_sw_title`/`current_sw_version` (telemetry, with
`sw_state`) and asks for the shared attributes `sw_title, sw_version, sw_size,
sw_checksum, sw_checksum_algorithm`. An assignment of our title and another version is
downloaded on a thread of its own: the chunk size as text to `v2/sw/request/{id}/chunk/{n}`,
the bytes [size*n, size*n+size) back on `v2/sw/response/{id}/chunk/{n}` (an empty payload
past the end), into the data folder (mode 0600); a reconnect resumes at the chunk it was
at. Then size and checksum are verified (runtime/checksums.py). States: DOWNLOADING,
DOWNLOADED, VERIFIED, then (installing) UPDATING, UPDATED, or FAILED with `sw_error`.

Installing: a verified package is moved to `<data>/update/package`, the state `installing`
written (config/update_state.py) and the gateway stopped in order (on_staged); the CLI
then hands over to the update guard (update_guard.py), which installs, runs the new
version as a trial and rolls back when it does not connect. The version that runs next
reads the state at start: the trial's version reports UPDATED once connected and writes
`committed`; the previous version, after a rollback, reports FAILED with the reason.
Device data never waits for any of this: chunks go beside the data path as the gateway
device's own traffic, at most one request in flight.
"""
import logging
import os
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple

from thingsboard_gateway.platform.topics import SW_RESPONSE_PREFIX as RESPONSE_PREFIX
from thingsboard_gateway.config import update_state

log = logging.getLogger(__name__)

SHARED_KEYS = ["sw_title", "sw_version", "sw_size", "sw_checksum", "sw_checksum_algorithm"]
CHUNK_TIMEOUT = 30.0
ACK_WAIT = 5.0
NO_INSTALL = "the package was verified, but no softwareUpdates.installCommand is configured to install it"


class SoftwareUpdates(object):
    """settings: thingsboard.softwareUpdates. device: the GatewayDevice (its connected()
    says whether the platform is up). folder: the data folder. version: the running one."""

    def __init__(self, settings, device, folder, version, clock=time.monotonic):
        # type: (Dict[str, Any], Any, str, str, Callable[[], float]) -> None
        self.settings = settings
        self.enabled = bool(settings.get("enabled"))
        self._device = device
        self._folder = folder
        self.version = version
        self._clock = clock
        self._cond = threading.Condition()
        self._chunks = {}  # type: Dict[int, bytes]  answers of the download in progress
        self._platform_error = None  # type: Optional[str]
        self._assignment = None  # type: Optional[Dict[str, Any]]
        self._thread = None  # type: Optional[threading.Thread]
        self._stop = threading.Event()
        self._failed = None  # type: Optional[tuple]  (title, version, checksum) that failed: not again
        self._request_id = 0
        self.state = None  # type: Optional[str]
        self.state_path = update_state.state_path(folder)
        self.on_staged = None  # type: Optional[Callable[[], None]]  stop in order for the update guard
        self._outcome = self._last_update()  # type: Optional[Dict[str, Any]]  to report once connected

    def _last_update(self):
        # type: () -> Optional[Dict[str, Any]]
        """The state an update left (a trial of this version, a rollback not yet reported)."""
        state = update_state.read(self.state_path)
        if state.get("state") == update_state.FAILED:
            self._failed = update_state.failed_key(state)
            return None if state.get("reported") else state
        if state.get("state") == update_state.TRIAL:
            if state.get("version") == self.version:
                return state
            log.error("Software update: the installed version is %s, not %s as assigned", self.version,
                      state.get("version"))
            try:  # the guard names it when it rolls back
                update_state.write(self.state_path, dict(state, running=self.version))
            except OSError:
                pass
        return None

    # -- hooks (paho's thread, main thread) ---------------------------------------------------
    def on_connected(self):
        """Report what runs and ask for the assignment (after every connect, main thread).
        The first connect after an update settles it: UPDATED and committed, or FAILED."""
        values = {"current_sw_title": self.settings["title"], "current_sw_version": self.version}
        outcome, self._outcome = self._outcome, None
        if outcome is not None:
            values.update(self._settle(outcome))
        elif not self.enabled:
            return
        self._report(values)
        if not self.enabled:
            return
        self._device.request_attributes(int(self._clock() * 1000) % 1000000, SHARED_KEYS)
        with self._cond:
            self._cond.notify_all()  # a download waiting for the platform goes on

    def on_attributes(self, content):
        # type: (Dict[str, Any]) -> None
        """The gateway device's shared attributes (pushed, or the answer to our request)."""
        if not self.enabled or not isinstance(content, dict) or "sw_version" not in content:
            return
        title, version = content.get("sw_title"), content.get("sw_version")
        if not isinstance(title, str) or not isinstance(version, str):
            return
        if title != self.settings["title"]:
            self._fail("software title %r is not this gateway's (%r)" % (title, self.settings["title"]))
            return
        if version == self.version:
            return  # what runs: nothing to do
        if _assigned(content) == self._failed:
            return  # failed once: waits for another version
        with self._cond:
            if self._assignment is not None and self._assignment.get("sw_version") == version:
                return  # re-pushed while it downloads
            self._assignment = dict(content)
            self._chunks.clear()
            self._platform_error = None
            self._request_id += 1
            self._cond.notify_all()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="software-update", daemon=True)
            self._thread.start()

    def on_chunk(self, topic, payload):
        # type: (str, bytes) -> None
        """v2/sw/response/{id}/chunk/{n} (paho's thread)."""
        parts = topic[len(RESPONSE_PREFIX):].split("/")
        if len(parts) != 3 or parts[1] != "chunk" or not parts[0].isdigit() or not parts[2].isdigit():
            return
        with self._cond:
            if int(parts[0]) == self._request_id:
                self._chunks[int(parts[2])] = bytes(payload)
                self._cond.notify_all()

    def on_error(self, payload):
        # type: (bytes) -> None
        with self._cond:
            self._platform_error = payload.decode("utf-8", "replace")[:200]
            self._cond.notify_all()

    def _settle(self, outcome):
        # type: (Dict[str, Any]) -> Dict[str, Any]
        if outcome.get("state") == update_state.TRIAL:
            log.info("Software update: %s %s is connected: the update is kept", outcome.get("title"), self.version)
            values = {"sw_state": "UPDATED", "current_sw_title": outcome.get("title") or self.settings["title"]}
            outcome = dict(outcome, state=update_state.COMMITTED, reported=True)
        else:
            log.warning("Software update: %s %s was not kept: %s", outcome.get("title"), outcome.get("version"),
                        outcome.get("error"))
            values = {"sw_state": "FAILED", "sw_error": str(outcome.get("error"))[:500]}
            outcome = dict(outcome, reported=True)
        try:
            update_state.write(self.state_path, outcome)
        except OSError as e:
            log.error("Software update: cannot write %s: %s", self.state_path, e)
        return values

    def stop(self):
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def describe(self):
        # type: () -> Dict[str, Any]
        """For gateway_update: what runs, and whether ThingsBoard may update it."""
        return {"current_version": self.version, "title": self.settings.get("title"),
                "updates_from_thingsboard": self.enabled, "installs": bool(self.settings.get("installCommand")),
                "state": self.state}

    # -- the download thread ------------------------------------------------------------------
    def _report(self, values, on_ack=None):
        # type: (Dict[str, Any], Optional[Callable[[int], None]]) -> None
        if "sw_state" in values:
            self.state = values["sw_state"]
        self._device.publish_telemetry({"ts": int(time.time() * 1000), "values": values}, on_ack)

    def _fail(self, reason, assignment=None):
        # type: (str, Optional[Dict[str, Any]]) -> None
        log.warning("Software update: FAILED: %s", reason)
        if assignment is not None:
            self._failed = _assigned(assignment)
        self._report({"sw_state": "FAILED", "sw_error": reason})

    def _path(self):
        return os.path.join(self._folder, "software-update.part")

    def _run(self):
        while not self._stop.is_set():
            with self._cond:
                assignment = self._assignment
                if assignment is None:
                    return
            outcome = self._download(assignment)
            with self._cond:
                if self._assignment is assignment:
                    self._assignment = None
                    if outcome is not None:
                        return

    def _next_chunk(self, request_id, number, size):
        # type: (int, int, int) -> Optional[bytes]
        """The answer for chunk `number` (asked again after a reconnect); None: stop or replaced."""
        topic = "v2/sw/request/%d/chunk/%d" % (request_id, number)
        asked_at = None  # type: Optional[float]
        while not self._stop.is_set():
            with self._cond:
                if self._request_id != request_id:
                    return None
                if number in self._chunks:
                    return self._chunks.pop(number)
                if self._platform_error:
                    raise IOError("the platform refused: %s" % self._platform_error)
            connected = self._device.connected()
            if connected and (asked_at is None or self._clock() - asked_at > CHUNK_TIMEOUT):
                self._device.publish(topic, str(size).encode())
                asked_at = self._clock()
            elif not connected:
                asked_at = None  # ask again once connected
            with self._cond:
                self._cond.wait(1.0)
        return None

    def _download(self, assignment):
        # type: (Dict[str, Any]) -> Optional[str]
        """Download and verify one assignment; its outcome, or None when replaced."""
        from thingsboard_gateway.runtime import checksums  # hashlib, zlib: only when a package comes
        version = assignment.get("sw_version")
        try:
            total = int(assignment.get("sw_size") or 0)
            running = checksums.hasher(assignment.get("sw_checksum_algorithm") or "SHA256")
        except (KeyError, TypeError, ValueError):
            self._fail("unknown checksum algorithm %r or size %r" % (assignment.get("sw_checksum_algorithm"),
                                                                      assignment.get("sw_size")), assignment)
            return "FAILED"
        size = int(self.settings["chunkSize"])
        request_id = self._request_id
        log.info("Software update: downloading %s %s (%d bytes)", assignment.get("sw_title"), version, total)
        self._report({"sw_state": "DOWNLOADING", "sw_title": assignment.get("sw_title"), "sw_version": version})
        path = self._path()
        received = 0
        try:
            os.makedirs(self._folder, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                number = 0
                while received < total:
                    data = self._next_chunk(request_id, number, size)
                    if data is None:
                        return None
                    if not data:
                        break  # past the end
                    out.write(data)
                    running.update(data)
                    received += len(data)
                    number += 1
                out.flush()
                os.fsync(out.fileno())
        except (IOError, OSError) as e:
            update_state.remove(path)
            self._fail("download failed: %s" % e, assignment)
            return "FAILED"
        self._report({"sw_state": "DOWNLOADED"})
        digest = running.hexdigest()
        if received != total:
            problem = "size %d bytes, expected %d" % (received, total)
        elif not checksums.matches(assignment.get("sw_checksum") or "", digest):
            problem = "checksum mismatch (%s %s, expected %s)" % (assignment.get("sw_checksum_algorithm"), digest,
                                                                   assignment.get("sw_checksum"))
        else:
            problem = None
        if problem is not None:
            update_state.remove(path)
            self._fail(problem, assignment)
            return "FAILED"
        self._report({"sw_state": "VERIFIED"})
        log.info("Software update: %s %s downloaded and verified", assignment.get("sw_title"), version)
        return self._stage(path, assignment)

    def _stage(self, path, assignment):
        # type: (str, Dict[str, Any]) -> str
        """Hand a verified package to the update guard: state `installing`, then stop in order."""
        install = self.settings.get("installCommand")
        if not install:
            update_state.remove(path)
            self._fail(NO_INSTALL, assignment)
            return "FAILED"
        package = os.path.abspath(os.path.join(update_state.folder(self._folder), "package"))
        state = {"state": update_state.INSTALLING, "title": assignment.get("sw_title"),
                 "version": assignment.get("sw_version"), "checksum": assignment.get("sw_checksum"),
                 "previous": self.version, "package": package, "install": install,
                 "rollback": self.settings.get("rollbackCommand") or "",
                 "timeout": self.settings["confirmTimeoutSeconds"], "reported": False}
        try:
            os.makedirs(os.path.dirname(package), exist_ok=True)
            os.replace(path, package)
            update_state.write(self.state_path, state)
        except OSError as e:
            update_state.remove(path)
            self._fail("cannot keep the package for installing: %s" % e, assignment)
            return "FAILED"
        delivered = threading.Event()  # UPDATING reaches the platform before the gateway stops
        self._report({"sw_state": "UPDATING"}, lambda mid: delivered.set())
        delivered.wait(ACK_WAIT)
        log.info("Software update: installing %s %s: stopping in order", assignment.get("sw_title"),
                 assignment.get("sw_version"))
        if self.on_staged is not None:
            self.on_staged()
        return "UPDATING"


def _assigned(content):
    # type: (Dict[str, Any]) -> Tuple[Any, Any, Any]
    """An assignment's (title, version, checksum), as update_state.failed_key keeps a failed one."""
    return content.get("sw_title"), content.get("sw_version"), content.get("sw_checksum")
