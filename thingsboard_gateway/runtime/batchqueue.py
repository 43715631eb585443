"""BatchQueue: a bounded queue whose consumer takes everything waiting in one go.

Why not `queue.Queue`: a consumer that drains it item by item takes the lock and
notifies producers once per item, and one that wakes per item pays a thread switch per
item. On a slow board (Python 3.7, a quarter of a core) those switches, not the work,
set the relay's ceiling (docs/DEVIATIONS.md, "Batching hand-offs"). `get_batch` waits
for the first item, optionally lingers so that a trickle becomes a batch, then takes
up to `max_items` under one lock acquisition.
"""
import collections
import threading
import time
from typing import Any, Callable, List, Optional


class BatchQueue(object):
    """Thread-safe; `put` blocks up to a timeout while the queue holds `maxsize` items."""

    def __init__(self, maxsize, clock=time.monotonic):
        # type: (int, Callable[[], float]) -> None
        self._maxsize = max(1, maxsize)
        self._items = collections.deque()  # type: collections.deque
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._clock = clock

    def put(self, item, timeout=None, on_wait=None):
        # type: (Any, Optional[float], Optional[Callable[[], None]]) -> bool
        """Append `item`; False if the queue stayed full for `timeout` s (None: wait).
        on_wait(): called after each second of waiting for room (a liveness beat)."""
        with self._lock:
            if len(self._items) >= self._maxsize:
                deadline = None if timeout is None else self._clock() + timeout
                while len(self._items) >= self._maxsize:
                    remaining = None if deadline is None else deadline - self._clock()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._not_full.wait(1.0 if remaining is None else min(remaining, 1.0))
                    if on_wait is not None:
                        on_wait()
            self._items.append(item)
            if len(self._items) == 1:
                self._not_empty.notify()
            return True

    def put_nowait(self, item):
        # type: (Any) -> bool
        return self.put(item, 0)

    def get_batch(self, max_items, timeout=None, linger=0.0, stop=None):
        # type: (int, Optional[float], float, Optional[threading.Event]) -> List[Any]
        """Wait up to `timeout` s (None: forever, 0: not at all) for an item; then, when
        fewer than `max_items` are waiting, wait `linger` s more (cut short by `stop`),
        and return up to `max_items` items, oldest first ([] on timeout)."""
        with self._lock:
            if not self._items and timeout != 0:
                self._not_empty.wait(timeout)
            if not self._items:
                return []
            short = len(self._items) < max_items
        if linger > 0 and short:
            if stop is not None:
                stop.wait(linger)
            else:
                time.sleep(linger)
        with self._lock:
            n = min(max_items, len(self._items))
            items = [self._items.popleft() for _ in range(n)]
            self._not_full.notify_all()
            return items

    def qsize(self):
        # type: () -> int
        with self._lock:
            return len(self._items)

    def __len__(self):
        return self.qsize()
