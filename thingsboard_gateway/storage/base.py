"""The EventStorage interface every storage implements.

Records are converted-data dicts (`deviceName`, `deviceType`, `telemetry`,
`attributes`). Reads go ahead of acks: `get_batch` hands out the next unread records,
`ack` releases a batch once the platform acknowledged everything that carried it.
Batches may be acked out of order; storage only forgets a record once it and every
record before it were acked. All methods are thread-safe.
"""
from abc import ABC, abstractmethod
from typing import Any, Dict, List, Optional, Tuple


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

    def group_commit(self):
        # type: () -> Optional[Tuple[float, int]]
        """(seconds, records): the writer holds what it takes until the first record has
        waited that long or that many wait, then puts them and commits at once. None: put
        as they come (commit_wait() still says when to commit)."""
        return None

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


class AckedPrefix(object):
    """Batches acknowledged in any order -> the longest acknowledged prefix.

    Records are numbered as they are handed out; `ack(first, end, position)` records that
    numbers [first, end) were acknowledged, `position` being where that range ends in the
    storage's own terms. It returns (records newly released, position of the new head)
    when the prefix grew, else None. Pure; the caller holds its lock.
    """

    def __init__(self, head=0):
        # type: (int) -> None
        self.head = head
        self._ranges = {}  # type: Dict[int, Any]  first -> (end, position)

    def ack(self, first, end, position=None):
        # type: (int, int, Any) -> Optional[Any]
        if end <= self.head:
            return None  # acknowledged twice, or handed out again after a rewind
        previous = self._ranges.get(first)
        if previous is None or previous[0] < end:
            self._ranges[first] = (end, position)
        released, head_position, progressed = 0, None, True
        while progressed:  # after a rewind, acknowledged ranges may overlap
            progressed = False
            for start in [f for f in self._ranges if f <= self.head]:
                range_end, range_position = self._ranges.pop(start)
                if range_end > self.head:
                    released += range_end - self.head
                    self.head = range_end
                    head_position = range_position
                    progressed = True
        return (released, head_position) if released else None

    def reset(self):
        """Forget ranges acknowledged beyond the head (everything is handed out again)."""
        self._ranges.clear()
