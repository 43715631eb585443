"""Error counts as ThingsBoard's gateway pages read them: telemetry
`<connector name>_ERRORS_COUNT` (the connectors table's errors column) and
`ALL_ERRORS_COUNT` (the gateway card), as upstream sends them: looked at every 5 s and
sent when changed, counting from zero again every 60 s (so the figure is the errors of
the current minute).

Counted from what already counts failures: a connector's failures (device I/O,
converters, connections: `failures_*` of its statistics), its data refused as invalid
or dropped on a full queue, and its restarts by the supervisor. Main thread."""
import logging
import time
from typing import Any, Callable, Dict

log = logging.getLogger(__name__)

CHECK_PERIOD = 5.0
RESET_PERIOD = 60.0


def statistics_of(connector, failed=log.debug):
    # type: (Any, Callable[..., None]) -> Dict[str, Any]
    """A running connector's statistics() ({} for none, or when a custom connector's own
    statistics() raises: its failure, reported with `failed`, not ours to spread)."""
    if connector is None:
        return {}
    try:
        return connector.statistics()
    except Exception:
        failed("Connector %s failed to report statistics", connector.get_name(), exc_info=True)
        return {}


def connector_errors(statistics, restarts, per_connector):
    # type: (Dict[str, Any], int, Dict[str, int]) -> int
    """Every failure counted so far for one connector (monotonic): its statistics'
    failures_*, its restarts, and its data refused as invalid or dropped (per_connector)."""
    return (sum(v for k, v in statistics.items() if k.startswith("failures_")) + restarts
            + per_connector.get("events_invalid", 0) + per_connector.get("events_dropped", 0))


class ErrorCounts(object):
    """connectors: the ConnectorSet. stats: Statistics. publish(values): the gateway
    device's telemetry."""

    def __init__(self, connectors, stats, publish, clock=time.monotonic):
        # type: (Any, Any, Callable[[Dict[str, Any]], None], Callable[[], float]) -> None
        self._connectors = connectors
        self._stats = stats
        self._publish = publish
        self._clock = clock
        self._base = {}  # type: Dict[str, int]  name -> total at the last reset
        self._sent = {}  # type: Dict[str, int]  key -> the value last sent
        self._reset_at = clock()

    def totals(self):
        # type: () -> Dict[str, int]
        out = {}
        for name, state in self._connectors.states().items():
            out[name] = connector_errors(statistics_of(self._connectors.by_name(name)), state.get("restarts", 0),
                                         self._stats.connector_snapshot(name))
        return out

    def check(self, connected=True):
        # type: (bool) -> Dict[str, int]
        """Every CHECK_PERIOD: what changed since it was last sent, sent (when connected)."""
        totals = self.totals()
        now = self._clock()
        if now - self._reset_at >= RESET_PERIOD:
            self._base, self._reset_at = dict(totals), now
        values = {name + "_ERRORS_COUNT": max(0, total - self._base.get(name, 0)) for name, total in totals.items()}
        values["ALL_ERRORS_COUNT"] = sum(values.values())
        changed = {k: v for k, v in values.items() if self._sent.get(k) != v}
        if changed and connected:
            self._publish({"ts": int(time.time() * 1000), "values": changed})
            self._sent.update(changed)
        return changed

    def connected(self):
        """A new platform session: everything is sent again at the next check."""
        self._sent = {}
