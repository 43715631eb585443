"""The EventStorage interface every storage implements.

Records are converted-data dicts (`deviceName`, `deviceType`, `telemetry`,
`attributes`). Reads go ahead of acks: `get_batch` hands out the next unread records,
`ack` releases a batch once the platform acknowledged everything that carried it.
Batches may be acked out of order; storage only forgets a record once it and every
record before it were acked. All methods are thread-safe.
"""
from abc import ABC, abstractmethod
from typing import Any, Dict, List, Optional


class StorageFull(Exception):
    """`put` could not store within its timeout: the producer should back off."""


class Batch(object):
    """Records handed out by one get_batch call; pass it back to `ack`."""

    __slots__ = ("first", "records")

    def __init__(self, first, records):
        # type: (int, List[Dict[str, Any]]) -> None
        self.first = first      # sequence number of records[0]
        self.records = records

    def __len__(self):
        return len(self.records)


class EventStorage(ABC):
    """Where records wait for delivery."""

    @abstractmethod
    def put(self, records, timeout=None):
        # type: (List[Dict[str, Any]], Optional[float]) -> None
        """Store records in order; block up to `timeout` s for room, then raise StorageFull."""

    @abstractmethod
    def get_batch(self, max_records, timeout=None):
        # type: (int, Optional[float]) -> Optional[Batch]
        """The next unread records (at most max_records); wait up to `timeout` s for some.
        None when nothing arrived in time or the storage is closed."""

    @abstractmethod
    def ack(self, batch):
        # type: (Batch) -> None
        """The platform acknowledged every record of `batch`."""

    @abstractmethod
    def rewind(self):
        # type: () -> None
        """Hand out again, from the oldest unacknowledged record, everything not acked."""

    def commit(self):
        # type: () -> None
        """Make everything put so far durable (storage-writer thread). No-op in memory."""

    def commit_wait(self):
        # type: () -> Optional[float]
        """Seconds until commit() is due; 0 now; None when nothing waits for it."""
        return None

    @abstractmethod
    def __len__(self):
        # type: () -> int
        """Records stored and not yet acknowledged."""

    @abstractmethod
    def close(self):
        # type: () -> None
        """Release resources; wakes anyone waiting in put or get_batch."""
