"""Supervision of connectors: start, watch, restart with backoff, disable after repeated failure.

Runs on the main thread: `start_all()` once, then `check()` whenever it is due (it
returns the seconds until it wants to run again). A connector fails when its class
cannot be created, when `open()` raises, when a thread it started with `start_thread`
ends while it is open, or when such a thread's heart stays silent for longer than
`connectorStuckMs` (a device call or a custom converter that never returns): the
thread's stack is logged once and the connector restarted; the others run on.
"""
import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from thingsboard_gateway.config.loader import ConnectorSpec
from thingsboard_gateway.connectors.connector import Connector, ConnectorUnavailable
from thingsboard_gateway.connectors.registry import ExtensionError, connector_class
from thingsboard_gateway.runtime.backoff import BackoffPolicy
from thingsboard_gateway.runtime.liveness import stack_of

log = logging.getLogger(__name__)

RUNNING, RESTARTING, DISABLED, STOPPED = "running", "restarting", "disabled", "stopped"
HEALTHY_AFTER = 300.0  # seconds of running after which earlier failures are forgotten


def close_within(connector, timeout):
    # type: (Any, float) -> bool
    """Call connector.close() on a helper thread; False if it did not return in time."""
    errors = []  # type: List[BaseException]

    def run():
        try:
            connector.close()
        except Exception as e:
            errors.append(e)

    thread = threading.Thread(target=run, name="close:" + str(connector.get_name()))
    thread.daemon = True  # holds no data; only a close() that hangs would keep it
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        log.error("Connector %s did not close within %.1f s", connector.get_name(), timeout)
        return False
    if errors:
        log.error("Connector %s failed while closing: %s", connector.get_name(), errors[0])
    return True


class ConnectorSlot(object):
    """One configured connector and its supervision state."""

    def __init__(self, spec, backoff):
        # type: (ConnectorSpec, BackoffPolicy) -> None
        self.spec = spec
        self.backoff = backoff
        self.instance = None  # type: Any
        self.state = STOPPED
        self.failures = 0
        self.restarts = 0
        self.last_error = None  # type: Optional[str]
        self.next_attempt = 0.0
        self.started_at = 0.0

    def describe(self):
        # type: () -> Dict[str, Any]
        return {"state": self.state, "failures": self.failures, "restarts": self.restarts,
                "last_error": self.last_error, "type": self.spec.type}


class Supervisor(object):
    """Owns the connector instances of one gateway."""

    def __init__(self, specs, gateway, settings, clock=time.monotonic, class_for=connector_class, on_attention=None):
        # type: (List[ConnectorSpec], Any, Dict[str, Any], Callable[[], float], Callable[..., type], Optional[Callable[[], None]]) -> None
        self._gateway = gateway
        self._clock = clock
        self._class_for = class_for
        self._max_failures = settings["maxFailures"]
        self._close_timeout = settings["closeTimeoutMs"] / 1000.0
        self._stuck_after = settings.get("connectorStuckMs", 120000) / 1000.0
        self._delays = (settings["minDelay"] / 1000.0, settings["maxDelay"] / 1000.0)
        self.slots = [ConnectorSlot(spec, self._backoff()) for spec in specs]  # type: List[ConnectorSlot]
        # Called (any thread) when a connector's thread ends unexpectedly, so that the
        # owner of the check loop runs check() now instead of at the next round.
        self._on_attention = on_attention or (lambda: None)

    def _backoff(self):
        # type: () -> BackoffPolicy
        """A connector's restart delays: minDelay doubling to maxDelay, forgotten after HEALTHY_AFTER."""
        return BackoffPolicy(self._delays[0], self._delays[1], 2.0, 0.1, HEALTHY_AFTER, self._clock)

    def wake(self):
        """Ask for a check now (any thread)."""
        self._on_attention()

    def by_name(self, name):
        # type: (Optional[str]) -> Any
        """The running connector instance called `name` (its tb_gateway.json name, or the
        `name` its own file gives, which devices are registered under), or None. Any
        thread (paho's, for RPCs): the main thread may be restarting that very connector."""
        for slot in list(self.slots):
            instance = slot.instance  # read once: a restart sets it to None under our feet
            if instance is not None and slot.state == RUNNING and name in (slot.spec.name, instance.get_name()):
                return instance
        return None

    def start_all(self):
        for slot in self.slots:
            self._start(slot)

    def _start(self, slot):
        # type: (ConnectorSlot) -> None
        spec = slot.spec
        try:
            cls = self._class_for(spec.type, spec.class_name)
        except ExtensionError as e:
            slot.state, slot.last_error = DISABLED, str(e)
            log.error("Connector %s disabled: %s", spec.name, e)
            return
        if not (isinstance(cls, type) and issubclass(cls, Connector)):
            slot.state = DISABLED
            slot.last_error = "%s is not a subclass of thingsboard_gateway.connectors.connector.Connector" % (
                spec.class_name or spec.type)
            log.error("Connector %s disabled: %s", spec.name, slot.last_error)
            return
        config = dict(spec.config) if isinstance(spec.config, dict) else {}
        config.setdefault("name", spec.name)
        try:
            slot.instance = cls(self._gateway, config, spec.type)
            slot.instance.on_thread_ended = self.wake
            slot.instance.open()
        except ConnectorUnavailable as e:
            close_within(slot.instance, self._close_timeout)
            slot.state, slot.last_error, slot.instance = DISABLED, str(e), None
            log.error("Connector %s disabled: %s", spec.name, e)
            return
        except Exception as e:
            self._failed(slot, "%s: %s" % (type(e).__name__, e), exc_info=True)
            return
        slot.state = RUNNING
        slot.started_at = self._clock()
        slot.backoff.connected()
        log.info("Connector %s (%s) started", spec.name, spec.type)

    def _failed(self, slot, reason, exc_info=False):
        # type: (ConnectorSlot, str, bool) -> None
        if slot.state == RUNNING and self._clock() - slot.started_at >= HEALTHY_AFTER:
            slot.failures = 0
        slot.failures += 1
        slot.last_error = reason
        if slot.instance is not None:
            close_within(slot.instance, self._close_timeout)
            slot.instance = None
        if slot.failures >= self._max_failures:
            slot.state = DISABLED
            log.error("Connector %s disabled after %d failures; last: %s", slot.spec.name, slot.failures, reason,
                      exc_info=exc_info)
            return
        delay = slot.backoff.next_delay()
        slot.state = RESTARTING
        slot.next_attempt = self._clock() + delay
        log.error("Connector %s failed (%d of %d): %s; restart in %.1f s", slot.spec.name, slot.failures,
                  self._max_failures, reason, delay, exc_info=exc_info)

    def check(self):
        # type: () -> float
        """Restart what is due, notice dead connector threads; seconds until next check."""
        now = self._clock()
        wait = 1.0
        for slot in self.slots:
            if slot.state == RUNNING:
                dead = slot.instance.dead_thread()
                if dead:
                    self._failed(slot, "thread %s ended unexpectedly" % dead)
                else:
                    self._check_progress(slot)
            if slot.state == RESTARTING:
                if now >= slot.next_attempt:
                    slot.restarts += 1
                    log.info("Restarting connector %s (attempt %d)", slot.spec.name, slot.restarts)
                    self._start(slot)
                if slot.state == RESTARTING:
                    wait = min(wait, max(0.05, slot.next_attempt - self._clock()))
        return wait

    def _check_progress(self, slot):
        # type: (ConnectorSlot) -> None
        stuck = slot.instance.stuck_thread(self._stuck_after)
        if stuck is None:
            return
        silent = stuck.silent_for(slot.instance.clock()) or self._stuck_after  # None: it ended just now
        log.error("Connector %s: thread %s made no progress for %.0f s (connectorStuckMs: %.0f s). Where it is "
                  "(most recent call last):\n%s", slot.spec.name, stuck.name, silent, self._stuck_after,
                  stack_of(stuck) or "(ended)")
        self._failed(slot, "thread %s made no progress for %.0f s" % (stuck.name, silent))

    def stop_all(self, timeout=None):
        # type: (Optional[float]) -> None
        """Close every running connector, all at once, each within the close timeout."""
        timeout = self._close_timeout if timeout is None else timeout
        closers = []
        for slot in self.slots:
            if slot.instance is not None:
                closer = threading.Thread(target=close_within, args=(slot.instance, timeout),
                                          name="stop:" + slot.spec.name)
                closer.daemon = True
                closer.start()
                closers.append(closer)
                slot.instance = None
            if slot.state != DISABLED:
                slot.state = STOPPED
        deadline = self._clock() + timeout + 0.5
        for closer in closers:
            closer.join(max(0.0, deadline - self._clock()))

    # -- changes of the configuration (main thread: remote configuration, hot reload) ------
    def slot(self, name):
        # type: (str) -> Optional[ConnectorSlot]
        return next((slot for slot in self.slots if slot.spec.name == name), None)

    def put(self, spec):
        # type: (ConnectorSpec) -> None
        """Run `spec`: a new connector is started; a running one with that name is closed
        (within the close timeout) and started again on the new configuration."""
        slot = self.slot(spec.name)
        if slot is None:
            slot = ConnectorSlot(spec, self._backoff())
            self.slots.append(slot)
        else:
            self._close(slot)
            slot.spec = spec
        slot.failures = 0
        self._start(slot)

    def remove(self, name):
        # type: (str) -> bool
        """Close and forget the connector `name`; False when there is none."""
        slot = self.slot(name)
        if slot is None:
            return False
        self._close(slot)
        self.slots.remove(slot)
        log.info("Connector %s stopped and removed", name)
        return True

    def _close(self, slot):
        # type: (ConnectorSlot) -> None
        if slot.instance is not None:
            close_within(slot.instance, self._close_timeout)
            slot.instance = None
        slot.state = STOPPED

    def states(self):
        # type: () -> Dict[str, Dict[str, Any]]
        return {slot.spec.name: slot.describe() for slot in self.slots}
