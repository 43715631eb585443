"""Counters that several threads add to (a connector's connection threads, its listener,
the platform connection's callbacks): `d[k] += 1` from two threads can lose a count."""
import threading
from typing import Dict


class Counters(object):
    """add(kind, n=1) from any thread; snapshot() is a copy."""

    def __init__(self, *kinds):
        # type: (*str) -> None
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(kinds, 0)  # type: Dict[str, int]

    def add(self, kind, n=1):
        # type: (str, int) -> None
        with self._lock:
            self._counts[kind] = self._counts.get(kind, 0) + n

    def __getitem__(self, kind):
        # type: (str) -> int
        return self._counts.get(kind, 0)

    def snapshot(self):
        # type: () -> Dict[str, int]
        with self._lock:
            return dict(self._counts)
