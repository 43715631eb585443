"""Thread-safe counters for the statistics the gateway reports."""
import threading
from typing import Dict


class Statistics(object):
    """Named counters, global and per connector. `add` is cheap and thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counters = {}  # type: Dict[str, int]
        self._per_connector = {}  # type: Dict[str, Dict[str, int]]

    def add(self, name, n=1, connector=None):
        # type: (str, int, str) -> None
        with self._lock:
            self._counters[name] = self._counters.get(name, 0) + n
            if connector is not None:
                counters = self._per_connector.setdefault(connector, {})
                counters[name] = counters.get(name, 0) + n

    def get(self, name):
        # type: (str) -> int
        with self._lock:
            return self._counters.get(name, 0)

    def snapshot(self):
        # type: () -> Dict[str, int]
        with self._lock:
            return dict(self._counters)

    def connector_snapshot(self, connector):
        # type: (str) -> Dict[str, int]
        with self._lock:
            return dict(self._per_connector.get(connector, {}))
