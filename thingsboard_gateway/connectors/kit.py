"""The connector kit's two base classes: what every built-in connector (and a custom one
that wants it) would otherwise write again.

`PollingConnector`: a DeviceWorker per endpoint (a port, an address, an adapter, a
server) that connects with backoff and runs the connector's schedule. `ListeningConnector`:
devices come to it (a socket, an HTTP server, a broker); its own `io` worker carries out
what the platform asks of devices (RPCs, attribute writes, outgoing requests), so no
device I/O ever runs on the platform connection's thread.

Both own:
- the connector's file, validated and completed once (`self.settings`: the loader's
  result at start-up, load_config's when the connector is made directly);
- thread-safe counters (`self.counts`), counted failures (`count()`, logged at most every
  30 s per kind) and `statistics()` made of both plus `gauges()`;
- open, close (wakes the workers, joins every watched thread) and `is_connected()`;
- RPC and attribute-update dispatch: a subclass says where each goes with
  `rpc_target(device, method, params)` and `attribute_target(device, key, value)`, which
  return (worker, work) or a reason; the work runs on that worker's thread;
- `emit()`: convert -> (a custom converter's failure counted) -> store.
"""
import logging
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from thingsboard_gateway.connectors.connector import VALIDATED, Connector
from thingsboard_gateway.connectors.worker import DeviceSession, DeviceWorker
from thingsboard_gateway.runtime.backoff import BackoffPolicy
from thingsboard_gateway.runtime.counters import Counters
from thingsboard_gateway.runtime.failures import FailureLog

Target = Union[str, Tuple[DeviceWorker, Callable[[], Any]], None]  # a reason, or where and what to run


def now_ms():
    # type: () -> int
    """The wall clock in ms, for the connector to hand to its converters (which read no clock)."""
    return int(time.time() * 1000)


def records(converted):
    # type: (Any) -> List[Any]
    """A converter's result (a dict, a list of them, or None) as the list of records to store."""
    if isinstance(converted, list):
        return [record for record in converted if record]
    return [converted] if converted else []


def failure_text(failures):
    # type: (Any) -> str
    """'key: reason; ...' of a converter's failures ((key, reason) pairs or mapping.Failure)."""
    return "; ".join("%s: %s" % ((f.key, f.reason) if hasattr(f, "reason") else tuple(f)[:2]) for f in failures)


class KitConnector(Connector):
    """The shared part of PollingConnector and ListeningConnector."""

    default_file = "config.json"  # the file name in messages when the entry names none
    uses_io = False  # whether open() starts `self.io` (see start_io)
    takes_validated = True  # the loader's validated file is taken as it is (registry.VALIDATED)
    close_timeout = 5.0  # seconds close() waits for each watched thread

    def __init__(self, gateway, config, connector_type):
        super(KitConnector, self).__init__(gateway, config, connector_type)
        self.file = config.get("configuration", self.default_file)
        # Validated once: by the loader at start-up (which marks it), else here (a connector
        # made directly, as tests and benchmarks do).
        self.settings = config if config.pop(VALIDATED, False) else self.load_config(config, self.file)
        self.failures = FailureLog(logging.getLogger(type(self).__module__))
        self.counts = Counters()
        self.workers = []  # type: List[DeviceWorker]
        self.io = None  # type: Optional[DeviceWorker]  see start_io()

    # -- lifecycle --------------------------------------------------------------------------
    def open(self):
        self.stop_event.clear()
        self.workers = []
        if self.uses_io:
            self.start_io()
        self.start()

    def start(self):
        """Start the connector's workers and threads (open() has cleared the stop event)."""

    def stopping(self):
        """close() has set the stop event: cut what blocks (sockets, servers) before the joins."""

    def close(self):
        self.stop_event.set()
        self.stopping()
        for worker in self.workers:
            worker.wake()
        self.join_threads(self.close_timeout)

    def start_worker(self, endpoint, session, backoff=None):
        # type: (str, DeviceSession, Any) -> DeviceWorker
        """A watched DeviceWorker (`connector:<name>-<endpoint>`) for `session`."""
        worker = DeviceWorker(self, endpoint, session, backoff or BackoffPolicy(1.0, 30.0), self.failures, self.clock)
        self.workers.append(worker)
        worker.start()
        return worker

    def start_io(self):
        """Start `self.io`, a worker (`connector:<name>-io`) that carries out, in order, what
        the platform asks of devices that have no worker of their own (outgoing requests,
        writes to listening connections)."""
        self.io = self.start_worker("io", DeviceSession())

    def on_io(self, work, reply=None):
        # type: (Callable[[], Any], Optional[Callable[[Any], None]]) -> bool
        """Run `work` on the io thread; reply(result) (an error reply when it is full or closed)."""
        io = self.io
        if io is None:
            if reply is not None:
                reply({"error": "connector %s is closed" % self.name})
            return False
        return io.submit(work, reply)

    def is_connected(self):
        return any(worker.connected for worker in self.workers)

    # -- statistics -------------------------------------------------------------------------
    def statistics(self):
        values = self.counts.snapshot()
        values.update(self.gauges())
        for kind, count in self.failures.snapshot().items():
            values["failures_" + kind] = count
        return values

    def gauges(self):
        # type: () -> Dict[str, int]
        """Current figures (devices online, connections open) for statistics()."""
        return {}

    def count(self, kind, message, sample=None):
        # type: (str, str, Any) -> None
        """A failure of `kind`: counted always, logged at most every 30 s, named by connector."""
        self.failures.count(kind, "%s: %s" % (self.name, message), sample)

    # -- data -------------------------------------------------------------------------------
    def store(self, data, on_stored=None, prompt=False, delivery=False):
        # type: (Any, Optional[Callable[[bool], None]], bool, bool) -> Any
        """Hand one converted record to the gateway (GatewayApi.send_to_storage): the way
        every built-in connector's data leaves it, beside deliver() and emit()."""
        return self.gateway.send_to_storage(self.name, self.id, data, on_stored, prompt, delivery)

    def deliver(self, device, converted, failures, kind, sample=None):
        # type: (str, Any, Any, str, Any) -> None
        """What a built-in converter returned (it never raises): failures counted as
        `<kind>:<device>`, the data (a dict or None) to storage. The hot path (a message, a
        frame): no closure, no try."""
        if failures:
            self.count("%s:%s" % (kind, device), "%s: %s" % (device, failure_text(failures)), sample)
        if converted:
            self.gateway.send_to_storage(self.name, self.id, converted, delivery=False)

    def emit(self, device, convert, kind, sample=None, strategy=None):
        # type: (str, Callable[[], Any], str, Any, Any) -> int
        """convert() returns converted data (a dict, a list of them or None), or (data,
        failures). Failures are counted as `<kind>:<device>`, a converter that raises as
        `converter:<device>` (the data is lost, nothing else is); what is left goes to
        storage, with `strategy` (a DeviceStrategy) unless it has its own. Returns how
        many records were stored."""
        try:
            result = convert()
        except Exception as e:  # a custom converter's own failure
            self.count("converter:" + device, "%s: converter failed: %s: %s" % (device, type(e).__name__, e), sample)
            return 0
        converted, failures = result if isinstance(result, tuple) else (result, None)
        self.deliver(device, None, failures, kind, sample)
        stored = records(converted)
        for record in stored:
            if strategy is not None and isinstance(record, dict):
                record.setdefault("reportStrategy", strategy)
            self.gateway.send_to_storage(self.name, self.id, record, delivery=False)
        return len(stored)

    # -- platform requests --------------------------------------------------------------------
    def server_side_rpc_handler(self, content):
        device, method, params, reply = self.rpc_request(content)
        target = self.rpc_target(device, method, params, (content.get("data") or {}).get("id"))
        if target is None or isinstance(target, str):
            reply({"error": target or "no RPC %s for %s" % (method, device)})
            return
        worker, work = target
        worker.submit(work, reply)

    def on_attributes_update(self, content):
        """Each key's write on the worker attribute_target names; nobody waits for it
        (a failure is counted as write:<endpoint> by the worker)."""
        device = content.get("device")
        for key, value in (content.get("data") or {}).items():
            target = self.attribute_target(device, key, value)
            if target is not None and not isinstance(target, str):
                target[0].submit(target[1])

    def rpc_target(self, device, method, params, request_id):
        # type: (Any, Any, Any, Any) -> Target
        """Where and what an RPC runs: (worker, work returning the reply), or why it cannot."""
        return "connector %s does not handle RPC" % self.name

    def attribute_target(self, device, key, value):
        # type: (Any, str, Any) -> Target
        """Where and what a shared attribute's write runs, or None when it goes nowhere."""
        return None


class PollingConnector(KitConnector):
    """Devices the connector goes to: one DeviceWorker per endpoint (start_worker in start())."""


class ListeningConnector(KitConnector):
    """Devices come to the connector (a listener, a server, a broker subscription); open()
    starts `self.io` first, which carries out what the platform asks of them (unless
    `uses_io` is false: a connector whose writes never block, such as MQTT's publishes)."""

    uses_io = True

    def is_connected(self):
        return self.is_alive()
