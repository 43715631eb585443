"""The public extension API: Connector (what a built-in or custom connector implements)
and GatewayApi (the `gateway` object every connector gets, and nothing else: a connector
never touches MQTT or storage directly). The gateway's GatewayApi is
gateway/ingest.py's Ingest; tests hand connectors their own (tests/support/recorder.py).
"""
import threading
import time
from abc import ABC, abstractmethod
from typing import Any, Callable, Dict, List, Optional, Tuple

from thingsboard_gateway.runtime.liveness import Heart


# Set in a connector's config by the loader once load_config has validated it; a connector
# of the kit (kit.py) takes such a config as it is and drops the mark.
VALIDATED = "__validated__"


class DeliveryError(Exception):
    """How send_to_storage's Future fails: the data will not reach the platform; the
    message says why."""


class InvalidData(DeliveryError):
    """The data was refused as ThingsBoard could not take it (device name, timestamp, value)."""


class GatewayApi(ABC):
    """What a connector sees as `gateway`. Every method may be called from any thread."""

    @abstractmethod
    def send_to_storage(self, connector_name, connector_id, data, on_stored=None, prompt=False, delivery=True):
        # type: (str, Any, Dict[str, Any], Optional[Callable[[bool], None]], bool, bool) -> Any
        """Validate and queue converted data ({"deviceName", "deviceType", "telemetry",
        "attributes"}) for delivery. Returns a concurrent.futures.Future resolved once the
        platform acknowledged every message that carried it, or failed with DeliveryError
        (InvalidData for data ThingsBoard could not take). Blocks up to the storage put
        timeout when the queue is full (backpressure). on_stored(ok): once the data is
        durable in storage (on the storage writer's thread), False if it was not stored.
        prompt: a sender waits for on_stored (commit at once). delivery=False: the caller
        ignores the Future; None is returned and nothing is tracked."""

    @abstractmethod
    def send_rpc_reply(self, device, request_id, content):
        # type: (Optional[str], Any, Any) -> None
        """Answer a device's RPC (device given), or with device None a gateway RPC id."""

    @abstractmethod
    def add_device(self, device_name, device_type, connector):
        # type: (str, str, Any) -> None
        """A device of `connector` (instance or name) is online: registered, announced."""

    @abstractmethod
    def del_device(self, device_name):
        # type: (str) -> None
        """A device went away: disconnected on the platform and forgotten."""

    @abstractmethod
    def request_attributes(self, device_name, keys, callback, shared=True):
        # type: (str, List[str], Callable[[Dict[str, Any]], None], bool) -> int
        """Ask the platform for a device's attributes; callback(answer) on the network thread."""


class ConnectorUnavailable(Exception):
    """Raised by open() when the connector cannot run on this machine at all (a missing
    optional library): the supervisor disables it with this one-line reason, no retries."""


class Connector(ABC):
    """Base class of every connector.

    `open()` returns quickly; work runs on threads started with `start_thread`, which
    the supervisor watches: a thread that dies while the connector is open counts as a
    failure and the connector is restarted with backoff. `close()` must release every
    socket, file and thread within a few seconds.

    `clock` (monotonic seconds) is what its schedules and timeouts read; tests replace it.
    """

    clock = staticmethod(time.monotonic)  # type: Callable[[], float]

    # -- what the loader and `check` call, before any instance exists --------------------
    @staticmethod
    def load_config(config, file, warnings=None):
        # type: (Any, str, Optional[List[str]]) -> Any
        """Validate this connector's file and return it completed with defaults; raise
        ConfigError (file, JSON path, what was expected) for a bad one and append
        warnings (unknown keys, ...) to `warnings`. `check` and start-up call it for
        built-in types. The default accepts any file as it is."""
        return config

    @staticmethod
    def unavailable(config):
        # type: (Any) -> Optional[str]
        """Why this connector cannot run on this machine (an optional library that is not
        installed), or None. `check` prints it; at start-up the supervisor says it once,
        when opening raises ConnectorUnavailable. The default: always available."""
        return None

    @staticmethod
    def describe_config(config):
        # type: (Any) -> str
        """One line for `thingsboard-gateway check`: what this file configures."""
        config = config if isinstance(config, dict) else {}
        devices = config.get("devices") or config.get("mapping") or (config.get("master") or {}).get("slaves") or []
        return "%d device(s)/mapping(s)" % len(devices)

    def __init__(self, gateway, config, connector_type):
        # type: (Any, Dict[str, Any], str) -> None
        self.gateway = gateway
        self.config = config
        self.connector_type = connector_type
        self.name = config.get("name") or connector_type
        self.id = config.get("id") or self.name
        self.stop_event = threading.Event()
        self._threads = []  # type: List[threading.Thread]
        self._hearts = {}  # type: Dict[str, Heart]  thread name -> its heart (see heart())
        # Set by the supervisor: called when a watched thread ends while not stopping, so
        # that it restarts the connector at once instead of at its next check.
        self.on_thread_ended = None  # type: Optional[Callable[[], None]]

    @abstractmethod
    def open(self):
        """Start working; return quickly."""

    @abstractmethod
    def close(self):
        """Stop working and release everything; return within a few seconds."""

    def get_name(self):
        # type: () -> str
        return self.name

    def get_type(self):
        # type: () -> str
        return self.connector_type

    def is_connected(self):
        # type: () -> bool
        """Whether the connector currently talks to its devices."""
        return self.is_alive()

    def statistics(self):
        # type: () -> Dict[str, int]
        """Counters this connector wants in the gateway's statistics (name -> count)."""
        return {}

    def on_attributes_update(self, content):
        # type: (Dict[str, Any]) -> None
        """A shared attribute changed: content is {"device": name, "data": {key: value}}."""

    def server_side_rpc_handler(self, content):
        # type: (Dict[str, Any]) -> None
        """An RPC for one of this connector's devices:
        {"device": name, "data": {"id": n, "method": m, "params": p}}. Reply with
        gateway.send_rpc_reply(device, id, result)."""
        data = content.get("data") or {}
        self.gateway.send_rpc_reply(content.get("device"), data.get("id"),
                                    {"error": "connector %s does not handle RPC" % self.name})

    # -- helpers for subclasses ------------------------------------------------------
    def rpc_request(self, content):
        # type: (Dict[str, Any]) -> Tuple[Any, Any, Any, Callable[[Any], None]]
        """(device, method, params, reply) of server_side_rpc_handler's content;
        reply(result) answers the platform (from any thread)."""
        device, data = content.get("device"), content.get("data") or {}
        request_id = data.get("id")

        def reply(result):
            self.gateway.send_rpc_reply(device, request_id, result)
        return device, data.get("method"), data.get("params"), reply

    def heart(self, suffix=""):
        # type: (str) -> Heart
        """The Heart of the watched thread `suffix` (see start_thread). A loop whose waits
        are all bounded beats it once per round; silent beyond supervision.connectorStuckMs
        (a device call or a converter that does not return), the supervisor restarts the
        connector. A thread that never beats is not watched for progress."""
        name = "connector:" + self.name + ("-" + suffix if suffix else "")
        heart = self._hearts.get(name)
        if heart is None:
            heart = self._hearts[name] = Heart(name, self.clock)
        return heart

    def stuck_thread(self, bound):
        # type: (float) -> Optional[Heart]
        """The heart of a watched thread silent for more than `bound` s, if any."""
        if self.stop_event.is_set():
            return None
        now = self.clock()
        for heart in list(self._hearts.values()):
            silent = heart.silent_for(now)
            if silent is not None and silent > bound:
                return heart
        return None

    def start_thread(self, target, suffix=""):
        # type: (Callable[[], None], str) -> threading.Thread
        """Start a named thread the supervisor watches (`connector:<name>[-suffix]`): its
        end while the connector is open is a failure, and so is its heart's silence."""
        heart = self.heart(suffix)
        name = heart.name

        def watched():
            heart.attach()
            try:
                target()
            finally:
                heart.stopped()
                if not self.stop_event.is_set() and self.on_thread_ended is not None:
                    self.on_thread_ended()

        thread = threading.Thread(target=watched, name=name)
        self._threads.append(thread)
        thread.start()
        return thread

    def join_threads(self, timeout=5.0):
        # type: (float) -> bool
        """Join the threads started with start_thread; True if all ended in time."""
        ok = True
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
                ok = ok and not thread.is_alive()
        self._threads = [t for t in self._threads if t.is_alive()]
        return ok

    def is_alive(self):
        # type: () -> bool
        """False when a thread started with start_thread ended while not stopping."""
        if self.stop_event.is_set():
            return True
        return all(t.is_alive() for t in self._threads)

    def dead_thread(self):
        # type: () -> Optional[str]
        """Name of a watched thread that ended unexpectedly, if any."""
        if self.stop_event.is_set():
            return None
        for thread in self._threads:
            if not thread.is_alive():
                return thread.name
        return None
