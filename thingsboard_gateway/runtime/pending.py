"""Requests waiting for an answer, each with a deadline: the MQTT connector's RPCs waiting
on a response topic, the REST connector's HTTP requests waiting for the platform. One
table for both; thread-safe (answers, expiry and the waiters run on different threads)."""
import threading
from typing import Any, Dict, Hashable, List, Optional, Tuple


class Pending(object):
    """key -> the items waiting under it, oldest first, each with its deadline (seconds on
    the caller's clock)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items = {}  # type: Dict[Hashable, List[Tuple[Any, float]]]

    def add(self, key, item, deadline):
        # type: (Hashable, Any, float) -> None
        with self._lock:
            self._items.setdefault(key, []).append((item, deadline))

    def take(self, key):
        # type: (Hashable) -> Optional[Any]
        """The oldest item waiting under `key`, removed; None when nothing waits."""
        with self._lock:
            waiting = self._items.get(key)
            if not waiting:
                return None
            item = waiting.pop(0)[0]
            if not waiting:
                del self._items[key]
            return item

    def remove(self, key, item):
        # type: (Hashable, Any) -> bool
        """Stop waiting for `item` (its waiter gave up); False if it was answered already."""
        with self._lock:
            waiting = self._items.get(key) or []
            for index, (candidate, _) in enumerate(waiting):
                if candidate is item:
                    del waiting[index]
                    if not waiting:
                        del self._items[key]
                    return True
            return False

    def expire(self, now):
        # type: (float) -> List[Tuple[Hashable, Any]]
        """(key, item) of everything whose deadline has passed, removed."""
        expired = []  # type: List[Tuple[Hashable, Any]]
        with self._lock:
            for key in list(self._items):
                kept = [(item, deadline) for item, deadline in self._items[key] if deadline > now]
                expired.extend((key, item) for item, deadline in self._items[key] if deadline <= now)
                if kept:
                    self._items[key] = kept
                else:
                    del self._items[key]
        return expired

    def wait(self, now, longest):
        # type: (float, float) -> float
        """Seconds until the next deadline (at least 0.01), at most `longest`."""
        with self._lock:
            deadlines = [deadline for waiting in self._items.values() for _, deadline in waiting]
        return longest if not deadlines else min(longest, max(0.01, min(deadlines) - now))

    def drain(self):
        # type: () -> List[Any]
        """Everything still waiting, removed (closing)."""
        with self._lock:
            items = [item for waiting in self._items.values() for item, _ in waiting]
            self._items = {}
        return items
