"""Memory storage: a bounded in-process queue. Lost on exit; fast."""
import collections
import threading
import time
from typing import Any, Dict, List, Optional

from thingsboard_gateway.runtime.liveness import beat_current
from thingsboard_gateway.storage.base import AckedPrefix, Batch, EventStorage, StorageFull


class MemoryEventStorage(EventStorage):
    """At most `max_records` unacknowledged records; `put` blocks for room (backpressure)."""

    def __init__(self, max_records, stats=None):
        # type: (int, Any) -> None
        self._max = max_records
        self._records = collections.deque()  # type: collections.deque
        self._acks = AckedPrefix()  # its head: the sequence number of _records[0]
        self._read = 0            # next sequence number to hand out
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
                    self._has_room.wait(1.0 if remaining is None else min(remaining, 1.0))
                    beat_current()  # waiting for room is not a stuck writer
                if self._closed:
                    raise StorageFull("storage is closed")
                self._records.append(record)
            self._has_data.notify_all()

    def get_batch(self, max_records, timeout=None):
        # type: (int, Optional[float]) -> Optional[Batch]
        with self._lock:
            head = self._acks.head
            if self._read >= head + len(self._records) and not self._closed:
                self._has_data.wait(timeout)
            head = self._acks.head
            available = head + len(self._records) - self._read
            if available <= 0 or self._closed:
                return None
            n = min(max_records, available)
            start = self._read - head
            records = [self._records[i] for i in range(start, start + n)]
            batch = Batch(self._read, records)
            self._read += n
            return batch

    def ack(self, batch):
        # type: (Batch) -> None
        with self._lock:
            released = self._acks.ack(batch.first, batch.first + len(batch.records))
            if released is None:
                return
            for _ in range(released[0]):
                self._records.popleft()
            self._read = max(self._read, self._acks.head)
            self._has_room.notify_all()

    def rewind(self):
        with self._lock:
            self._read = self._acks.head
            self._acks.reset()

    def __len__(self):
        with self._lock:
            return len(self._records)

    def close(self):
        with self._lock:
            self._closed = True
            self._has_data.notify_all()
            self._has_room.notify_all()
