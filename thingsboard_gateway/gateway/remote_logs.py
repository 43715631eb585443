"""Remote logs, as ThingsBoard's gateway pages show them: log lines sent as the gateway
device's telemetry. The gateway's own lines (at `RemoteLoggingLevel`: NONE, CRITICAL,
ERROR, WARNING, INFO, DEBUG, TRACE) under `LOGS` (the page's general tab) and, in the same
entry, under their source's key as upstream's loggers name them: `CONNECTION_LOGS` (the
platform connection), `STORAGE_LOGS`, `EXTENSIONS_LOGS` (custom connectors and converters:
the key the page reads) or `SERVICE_LOGS` (the rest). A connector whose file says
`"enableRemoteLogging": true` sends its lines as `<connector>_LOGS` (at its `logLevel`).

Bounded: at most RATE lines a second on average and BURST in any second (a token bucket);
lines over that are dropped, counted and summarized in one line ("N log lines were not
sent"). Logging never waits for it: `emit` appends to a bounded deque; the main thread
sends. It never recurses: what is logged while sending is not sent, and the remote-log
code logs nothing itself. It never delays device data: lines go out as the gateway
device's own telemetry, beside the device data path."""
import collections
import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

LEVELS = {"NONE": None, "CRITICAL": logging.CRITICAL, "ERROR": logging.ERROR, "WARNING": logging.WARNING,
          "INFO": logging.INFO, "DEBUG": logging.DEBUG, "TRACE": logging.DEBUG}
RATE = 10.0  # lines per second, on average
BURST = 20  # lines in any second, and per telemetry message
PENDING = 2 * BURST  # lines held while waiting for tokens; older ones are current enough
SOURCES = (("thingsboard_gateway.platform", "CONNECTION_LOGS"), ("thingsboard_gateway.mqtt", "CONNECTION_LOGS"),
           ("thingsboard_gateway.storage", "STORAGE_LOGS"), ("extensions", "EXTENSIONS_LOGS"))


def source_key(logger_name):
    # type: (str) -> str
    """The page's key for a gateway line by where it was logged."""
    for prefix, key in SOURCES:
        if logger_name == prefix or logger_name.startswith(prefix + "."):
            return key
    return "SERVICE_LOGS"


class RemoteLogs(logging.Handler):
    """Attach with `install()`; the owner calls `send_pending()` (main thread) when woken
    and at the time it returns (not `flush()`: logging calls that at exit). `send(entries)` publishes [{"ts", "values": {key: line}}]."""

    def __init__(self, send, wake, connectors=None, clock=time.monotonic, wall=time.time):
        # type: (Callable[[List[Dict[str, Any]]], None], Callable[[], None], Optional[Dict[str, Tuple[str, int]]], Callable[[], float], Callable[[], float]) -> None
        logging.Handler.__init__(self, logging.DEBUG)
        self.setFormatter(logging.Formatter("%(asctime)s - |%(levelname)s| - [%(name)s] - %(message)s"))
        self._send = send
        self._wake = wake
        self._clock = clock
        self._wall = wall
        self.installed = False
        # connector type -> [(connector name, level)] of connectors whose lines are sent
        self._connectors = {}  # type: Dict[str, List[Tuple[str, int]]]
        self.level_of_core = None  # type: Optional[int]  (RemoteLoggingLevel; None = NONE)
        self._pending = collections.deque()  # type: collections.deque
        self._tokens = float(BURST)
        self._filled_at = clock()
        self._sending = threading.local()
        self.dropped = 0
        self.sent = 0
        self._summarized = 0
        self.set_connectors(connectors or {})

    # -- configuration (main thread) --------------------------------------------------------
    def set_remote_level(self, name):
        # type: (Any) -> None
        level = LEVELS.get(str(name).upper(), "unknown") if name is not None else None
        if level == "unknown":
            return
        self.level_of_core = level
        self.install()

    def set_connectors(self, connectors):
        # type: (Dict[str, Tuple[str, int]]) -> None
        """name -> (type, level) of the connectors whose lines are sent as <name>_LOGS."""
        by_type = {}  # type: Dict[str, List[Tuple[str, int]]]
        for name, (kind, level) in connectors.items():
            by_type.setdefault(kind, []).append((name, level))
        self._connectors = by_type
        if self.installed or by_type:
            self.install()

    def install(self):
        """Attach to the gateway's loggers when something is to be sent; detach when not
        (no cost at all then). Called again after logging is reconfigured."""
        wanted = self.level_of_core is not None or bool(self._connectors)
        for name in ("thingsboard_gateway", "extensions"):
            logger = logging.getLogger(name)
            if wanted and self not in logger.handlers:
                logger.addHandler(self)
            elif not wanted and self in logger.handlers:
                logger.removeHandler(self)
        self.installed = wanted

    # -- any thread -------------------------------------------------------------------------
    def emit(self, record):
        if getattr(self._sending, "active", False):
            return  # logged while sending logs: never sent (no recursion)
        keys = self._keys(record)
        if keys is None:
            return
        if len(self._pending) >= PENDING:
            self.dropped += 1
            return
        try:
            line = self.format(record)
        except Exception:  # a bad %-format in someone's log call: not our line to send
            return
        first = not self._pending
        self._pending.append((int(record.created * 1000), keys, line))
        if first:
            self._wake()

    def _keys(self, record):
        # type: (logging.LogRecord) -> Optional[Tuple[str, ...]]
        name = record.name
        if name.startswith("thingsboard_gateway.connectors."):
            kind = name.split(".")[2]
            for connector, level in self._connectors.get(kind, ()):
                if record.levelno >= level:
                    return (connector + "_LOGS",)
        core = self.level_of_core
        return ("LOGS", source_key(name)) if core is not None and record.levelno >= core else None

    # -- main thread ------------------------------------------------------------------------
    def send_pending(self):
        # type: () -> Optional[float]
        """Send what the tokens allow; the monotonic time to call again, or None."""
        now = self._clock()
        self._tokens = min(float(BURST), self._tokens + (now - self._filled_at) * RATE)
        self._filled_at = now
        entries = []
        while self._pending and self._tokens >= 1 and len(entries) < BURST:
            ts, keys, line = self._pending.popleft()
            entries.append({"ts": ts, "values": dict.fromkeys(keys, line)})
            self._tokens -= 1
        unsent = self.dropped - self._summarized
        if unsent and self._tokens >= 1 and len(entries) < BURST:
            entries.append({"ts": int(self._wall() * 1000),
                            "values": {"LOGS": "%d log lines were not sent (over %d a second)" % (unsent, RATE)}})
            self._summarized += unsent
            self._tokens -= 1
        if entries:
            self._sending.active = True
            try:
                self._send(entries)
                self.sent += len(entries)
            finally:
                self._sending.active = False
        if self._pending or self.dropped > self._summarized:
            return now + max(0.0, 1.0 - self._tokens) / RATE
        return None

    def statistics(self):
        # type: () -> Dict[str, int]
        return {"remote_log_lines_sent": self.sent, "remote_log_lines_dropped": self.dropped}
