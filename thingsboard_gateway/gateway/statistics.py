"""The gateway's named counters, global and per connector, on the project's one counters
class (runtime/counters.py: a count of one takes no lock, larger additions do)."""
import threading
from typing import Dict

from thingsboard_gateway.runtime.counters import Counters


class Statistics(object):
    """Named counters, global and per connector. `add` is cheap and thread-safe."""

    def __init__(self):
        self._all = Counters()
        self._lock = threading.Lock()  # guards the creation of a connector's counters
        self._per_connector = {}  # type: Dict[str, Counters]

    def add(self, name, n=1, connector=None):
        # type: (str, int, str) -> None
        self._all.add(name, n)
        if connector is not None:
            self.add_to(connector, name, n)

    def add_to(self, connector, name, n):
        # type: (str, str, int) -> None
        """Count for one connector only (bytes received: no global figure needed)."""
        counters = self._per_connector.get(connector)
        if counters is None:
            with self._lock:
                counters = self._per_connector.setdefault(connector, Counters())
        counters.add(name, n)

    def get(self, name):
        # type: (str) -> int
        return self._all[name]

    def snapshot(self):
        # type: () -> Dict[str, int]
        return self._all.snapshot()

    def connector_snapshot(self, connector):
        # type: (str) -> Dict[str, int]
        counters = self._per_connector.get(connector)
        return counters.snapshot() if counters is not None else {}
