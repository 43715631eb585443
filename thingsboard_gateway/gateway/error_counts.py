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


def connector_errors(connector, state, per_connector):
    # type: (Any, Dict[str, Any], Dict[str, int]) -> int
    """Every failure counted so far for one connector (monotonic)."""
    total = per_connector.get("events_invalid", 0) + per_connector.get("events_dropped", 0) + state.get("restarts", 0)
    if connector is not None:
        try:
            total += sum(v for k, v in connector.statistics().items() if k.startswith("failures_"))
        except Exception:  # a custom connector's statistics(): its failure, not ours to spread
            log.debug("Connector statistics failed", exc_info=True)
    return total


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
            out[name] = connector_errors(self._connectors.by_name(name), state, self._stats.connector_snapshot(name))
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
