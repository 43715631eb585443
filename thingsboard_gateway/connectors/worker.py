"""The device-session worker that polling connectors build on: one thread per endpoint
(a TCP/UDP address, a serial port, a BLE adapter, an OPC-UA server).

A connector describes what happens on an endpoint with a `DeviceSession` (connect,
disconnect, the scheduled jobs); the worker owns the thread, the schedule, the work
queue that runs RPCs and attribute writes on that thread (device clients are rarely
thread-safe), reconnects with backoff, and reports devices online and offline.

Late polls, one policy for every connector: a job runs at its due time. When it comes
late (a slow device, a long RPC, a reconnect), it runs once as soon as the thread is
free; the runs missed meanwhile are skipped, not piled up. Its next run is one period
after the due time it missed if that is still ahead, else one period from now.

The clock is injected (`time.monotonic` by default), so tests drive the schedule.
"""
import logging
import time
from typing import Any, Callable, Dict, Hashable, List, Optional

from thingsboard_gateway.runtime.batchqueue import BatchQueue
from thingsboard_gateway.runtime.liveness import Heart
from thingsboard_gateway.runtime.schedule import Schedule

log = logging.getLogger(__name__)

Reply = Optional[Callable[[Any], None]]


class SessionLost(Exception):
    """Raised by a session job when the link to the endpoint is gone: the worker
    disconnects and reconnects with backoff."""


class DeviceSession(object):
    """One endpoint's protocol work; every method runs on the worker's thread.

    `connect` raises on failure (the worker waits the backoff delay and tries again);
    jobs are scheduled with `self.worker.schedule.add(key, period)` (usually in
    `connect`) and run by `run_job(key)`, which raises SessionLost when the link broke.
    """

    worker = None  # type: Any  set by DeviceWorker

    def connect(self):
        """Open the link (may block up to the protocol's timeout)."""

    def disconnect(self):
        """Release the link; never raises."""

    def connect_failed(self, reason):
        # type: (str) -> None
        """Count (and log, rate-limited) a failed connect; statistics key connect:<endpoint>."""
        worker = self.worker
        worker.failures.count("connect:" + worker.endpoint, "%s: cannot connect to %s: %s"
                              % (worker.connector.name, worker.endpoint, reason))

    def run_job(self, key):
        # type: (Hashable) -> None
        """Run the scheduled job `key`."""


class DeviceWorker(object):
    """Owns one endpoint's thread (`connector:<name>-<endpoint>`).

    connector: the Connector (stop_event, start_thread, gateway). backoff: an object with
    next_delay() and connected() (runtime.backoff). failures: a FailureLog.
    """

    def __init__(self, connector, endpoint, session, backoff, failures, clock=time.monotonic):
        # type: (Any, str, DeviceSession, Any, Any, Callable[[], float]) -> None
        self.connector = connector
        self.endpoint = endpoint
        self.session = session
        self.backoff = backoff
        self.failures = failures
        self.clock = clock
        self.schedule = Schedule(clock)
        self.connected = False
        self.reconnects = 0
        self._tasks = BatchQueue(1000, clock)
        self._online = {}  # type: Dict[str, bool]
        self._retry_at = 0.0  # when to connect again
        self._ended = False  # run() returned: submit() refuses
        # Beaten once per round; the connector's heart for this thread once started (a job or
        # task that never returns gets the connector restarted: Connector.heart).
        self.heart = Heart(endpoint, clock)
        session.worker = self

    # -- any thread -----------------------------------------------------------------------
    def start(self):
        self.heart = self.connector.heart(self.endpoint)
        self.connector.start_thread(self.run, self.endpoint)

    def submit(self, work, reply=None):
        # type: (Callable[[], Any], Reply) -> bool
        """Run `work()` on this worker's thread; `reply(result)` gets its result, or
        {"error": ...} when it raised. False (and an error reply) when the queue is full or
        the worker has stopped (a connector closed while the platform's RPC was on its way)."""
        if not self._ended and self._tasks.put_nowait((work, reply)):
            if self._ended:  # it ended meanwhile: nobody else answers what is queued
                self._refuse_queued()
            return True
        if reply is not None:
            reply({"error": "connector %s is stopped" % self.connector.name if self._ended else
                   "endpoint %s is busy: too many requests waiting" % self.endpoint})
        return False

    def _refuse_queued(self):
        for task in self._tasks.get_batch(1000, 0):
            if task is not None and task[1] is not None:
                task[1]({"error": "connector %s is stopped" % self.connector.name})

    def wake(self):
        """Make the thread look at its stop event now (close() calls it)."""
        self._tasks.put_nowait(None)

    # -- the worker's thread --------------------------------------------------------------
    def set_online(self, device, device_type, online):
        # type: (str, str, bool) -> None
        """Report a device connected or disconnected on the platform (once per change)."""
        if self._online.get(device, False) == online:
            return
        self._online[device] = online
        if online:
            self.connector.gateway.add_device(device, device_type, self.connector)
        else:
            self.connector.gateway.del_device(device)

    def online_devices(self):
        # type: () -> List[str]
        return [name for name, online in self._online.items() if online]

    def run(self):
        stop = self.connector.stop_event
        self._retry_at = self.clock()
        beat = self.heart.beat
        while not stop.is_set():
            beat()
            if not self.connected and self.clock() >= self._retry_at:
                if self._connect():
                    continue
                self._retry_at = self.clock() + self.backoff.next_delay()
            due = self._retry_at if not self.connected else self.schedule.next_due()
            wait = None if due is None else max(0.0, due - self.clock())
            for task in self._tasks.get_batch(100, 0.5 if wait is None else min(wait, 0.5)):
                if task is not None:
                    self._run_task(*task)
            if stop.is_set() or not self.connected:
                continue
            for key in self.schedule.pop_due():
                if not self._run_job(key):
                    break
        self._disconnect()
        self._ended = True
        self._refuse_queued()
        for name in self.online_devices():
            self._online[name] = False
            self.connector.gateway.del_device(name)

    def _connect(self):
        # type: () -> bool
        try:
            self.session.connect()
        except Exception as e:  # every protocol raises its own kind; all mean "not now"
            self.session.connect_failed("%s: %s" % (type(e).__name__, e))
            self.session.disconnect()
            return False
        self.connected = True
        self.backoff.connected()
        return True

    def _disconnect(self):
        if self.connected:
            self.connected = False
            self.reconnects += 1
        self.session.disconnect()

    def _lost(self):
        """The link broke: disconnect, and connect again after the backoff delay (a link
        that keeps breaking right after connecting is retried ever more slowly)."""
        self._disconnect()
        self._retry_at = self.clock() + self.backoff.next_delay()

    def _run_job(self, key):
        # type: (Hashable) -> bool
        try:
            self.session.run_job(key)
            return True
        except SessionLost as e:
            reason = str(e)
        except Exception as e:  # a protocol error we did not foresee: the session is suspect
            reason = "%s: %s" % (type(e).__name__, e)
            log.debug("%s: job %s failed", self.endpoint, key, exc_info=True)
        self.failures.count("connection:" + self.endpoint, "%s: lost %s: %s" % (self.connector.name, self.endpoint,
                                                                               reason))
        self._lost()
        return False

    def _run_task(self, work, reply):
        # type: (Callable[[], Any], Reply) -> None
        try:
            result = work()
        except SessionLost as e:
            result = {"error": str(e)}
            self._lost()
        except Exception as e:  # the device's refusal, a bad value: the requester hears it
            result = {"error": "%s: %s" % (type(e).__name__, e) if not isinstance(e, ValueError) else str(e)}
        if reply is None and isinstance(result, dict) and "error" in result and len(result) == 1:
            # nobody waits for an attribute write: count and log it instead
            self.failures.count("write:" + self.endpoint, "%s: a write on %s failed: %s"
                                % (self.connector.name, self.endpoint, result["error"]))
        if reply is not None:
            try:
                reply(result)
            except Exception:
                log.exception("%s: replying failed", self.endpoint)

