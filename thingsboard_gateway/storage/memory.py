"""Memory storage: a bounded in-process queue. Lost on exit; fast."""
import collections
import threading
import time
from typing import Any, Dict, List, Optional

from thingsboard_gateway.storage.base import Batch, EventStorage, StorageFull


class MemoryEventStorage(EventStorage):
    """At most `max_records` unacknowledged records; `put` blocks for room (backpressure)."""

    def __init__(self, max_records, stats=None):
        # type: (int, Any) -> None
        self._max = max_records
        self._records = collections.deque()  # type: collections.deque
        self._head = 0            # sequence number of _records[0]
        self._read = 0            # next sequence number to hand out
        self._acked = {}          # type: Dict[int, int]  first -> end, acked ranges not yet forgotten
        self._closed = False
        self._lock = threading.Lock()
        self._has_data = threading.Condition(self._lock)
        self._has_room = threading.Condition(self._lock)

    def put(self, records, timeout=None):
        # type: (List[Dict[str, Any]], Optional[float]) -> None
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            for record in records:
                while len(self._records) >= self._max and not self._closed:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise StorageFull("memory storage holds %d records" % self._max)
                    self._has_room.wait(remaining)
                if self._closed:
                    raise StorageFull("storage is closed")
                self._records.append(record)
            self._has_data.notify_all()

    def get_batch(self, max_records, timeout=None):
        # type: (int, Optional[float]) -> Optional[Batch]
        with self._lock:
            if self._read >= self._head + len(self._records) and not self._closed:
                self._has_data.wait(timeout)
            available = self._head + len(self._records) - self._read
            if available <= 0 or self._closed:
                return None
            n = min(max_records, available)
            start = self._read - self._head
            records = [self._records[i] for i in range(start, start + n)]
            batch = Batch(self._read, records)
            self._read += n
            return batch

    def ack(self, batch):
        # type: (Batch) -> None
        with self._lock:
            end = batch.first + len(batch.records)
            if end <= self._head:
                return  # already forgotten (acked twice, or re-read after a rewind)
            self._acked[batch.first] = max(end, self._acked.get(batch.first, 0))
            released = False
            progressed = True
            while progressed:  # after a rewind, acked ranges may overlap
                progressed = False
                for first in [f for f in self._acked if f <= self._head]:
                    end = self._acked.pop(first)
                    if end > self._head:
                        for _ in range(end - self._head):
                            self._records.popleft()
                        self._head = end
                        released = progressed = True
            if self._read < self._head:
                self._read = self._head
            if released:
                self._has_room.notify_all()

    def rewind(self):
        with self._lock:
            self._read = self._head
            self._acked.clear()

    def __len__(self):
        with self._lock:
            return len(self._records)

    def close(self):
        with self._lock:
            self._closed = True
            self._has_data.notify_all()
            self._has_room.notify_all()
