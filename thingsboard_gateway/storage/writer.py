"""The storage-writer thread: drains the bounded in-memory queue into EventStorage.

Producers (connector threads) call `submit`, which blocks up to a timeout when the
queue is full: that is the backpressure connectors feel when storage cannot keep up.
The writer takes records in groups so storage can commit many at once.
"""
import logging
import queue
import threading
from typing import Any, Dict, List, Optional

from thingsboard_gateway.storage.base import EventStorage, StorageFull

log = logging.getLogger(__name__)

GROUP = 500


class StorageWriter(object):
    """Owns the `storage-writer` thread and the queue in front of storage."""

    def __init__(self, storage, queue_size=10000, stats=None):
        # type: (EventStorage, int, Any) -> None
        self._storage = storage
        self._queue = queue.Queue(queue_size)  # type: queue.Queue
        self._stats = stats
        self._stop = threading.Event()
        self._thread = None  # type: Optional[threading.Thread]

    def start(self):
        self._thread = threading.Thread(target=self._run, name="storage-writer")
        self._thread.start()

    def submit(self, record, timeout):
        # type: (Dict[str, Any], Optional[float]) -> bool
        """Queue one record; False if the queue stayed full for `timeout` s."""
        try:
            self._queue.put(record, timeout=timeout)
            return True
        except queue.Full:
            return False

    def queued(self):
        # type: () -> int
        return self._queue.qsize()

    def _take_group(self, timeout):
        # type: (float) -> List[Dict[str, Any]]
        try:
            group = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            return []
        try:
            while len(group) < GROUP:
                group.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        return group

    def _run(self):
        while not self._stop.is_set():
            group = self._take_group(0.5)
            if group:
                self._store(group, None)

    def _store(self, group, timeout):
        # type: (List[Dict[str, Any]], Optional[float]) -> bool
        try:
            self._storage.put(group, timeout=timeout)
            return True
        except StorageFull as e:
            log.error("Storage refused %d records: %s", len(group), e)
            if self._stats is not None:
                self._stats.add("events_dropped", len(group))
            return False

    def stop(self, timeout=5.0):
        """Stop the thread, then flush what is still queued into storage."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        while True:
            group = self._take_group(0)
            if not group:
                break
            self._store(group, timeout)
