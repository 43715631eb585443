"""The storage-writer thread: drains the bounded in-memory queue into EventStorage and
commits in groups.

Producers (connector threads) call `submit`, which blocks up to a timeout when the
queue is full: that is the backpressure connectors feel when storage cannot keep up.
The writer takes records in groups and commits when storage says a commit is due (by
count or by time), so one fsync covers many records. A record's `on_commit` callback
runs on this thread once the record is durable (for memory storage: once stored).
"""
import logging
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from thingsboard_gateway.runtime.batchqueue import BatchQueue
from thingsboard_gateway.storage.base import EventStorage, StorageFull

log = logging.getLogger(__name__)

GROUP = 500
IDLE_WAIT = 0.5
# After the first record of a group arrives, wait this long for more: at a steady
# trickle the writer then wakes, stores, commits and releases device acknowledgements
# once per 20 ms instead of once per record (with the connector's batching, the relay's
# ceiling on a quarter core with Python 3.7 rose from ~1,250 to ~1,500 msgs/s;
# docs/DEVIATIONS.md 7). It adds at most this much to the latency.
LINGER = 0.02

Callback = Optional[Callable[[bool], None]]


class StorageWriter(object):
    """Owns the `storage-writer` thread and the queue in front of storage."""

    def __init__(self, storage, queue_size=2000, stats=None, linger=LINGER):
        # type: (EventStorage, int, Any, float) -> None
        self._storage = storage
        self._linger = linger
        self._queue = BatchQueue(queue_size)
        self._stats = stats
        self._stop = threading.Event()
        self._thread = None  # type: Optional[threading.Thread]
        self._waiting = []  # type: List[Callable[[bool], None]]  callbacks of records not yet committed

    def start(self):
        self._thread = threading.Thread(target=self._run, name="storage-writer")
        self._thread.start()

    def submit(self, record, timeout, on_commit=None, prompt=False):
        # type: (Dict[str, Any], Optional[float], Callback, bool) -> bool
        """Queue one record; False if the queue stayed full for `timeout` s.
        on_commit(True) runs once the record is durable, on_commit(False) if it was dropped.
        prompt: a sender waits for this record to be durable (an HTTP client holding its
        request): its group is committed as soon as it is stored, not at the next group
        commit (one fsync per linger period at most, instead of one per commit interval)."""
        return self._queue.put((record, on_commit, prompt), timeout=timeout)

    def queued(self):
        # type: () -> int
        return self._queue.qsize()

    def _take_group(self, timeout):
        # type: (float) -> List[Tuple[Dict[str, Any], Callback, bool]]
        """Up to GROUP queued records, waiting up to `timeout` s for the first (and then
        lingering, when waiting was allowed)."""
        timeout = max(0.0, timeout)
        return self._queue.get_batch(GROUP, timeout, min(self._linger, timeout), self._stop)

    def _run(self):
        while not self._stop.is_set():
            due = self._storage.commit_wait()
            group = self._take_group(IDLE_WAIT if due is None else min(due, IDLE_WAIT))
            if group:
                self._store(group, None)
            due = self._storage.commit_wait()
            if due is not None and due <= 0 or (not group and due is not None):
                self._commit()

    def _store(self, group, timeout):
        # type: (List[Tuple[Dict[str, Any], Callback, bool]], Optional[float]) -> bool
        try:
            self._storage.put([record for record, _, _ in group], timeout=timeout)
        except StorageFull as e:
            log.error("Storage refused %d records: %s", len(group), e)
            if self._stats is not None:
                self._stats.add("events_dropped", len(group))
            self._notify([cb for _, cb, _ in group if cb is not None], False)
            return False
        self._waiting.extend(cb for _, cb, _ in group if cb is not None)
        if self._storage.commit_wait() is None or any(prompt for _, _, prompt in group):
            self._commit()  # nothing to make durable (stored is committed), or a sender waits
        return True

    def _commit(self):
        try:
            self._storage.commit()
        except OSError as e:
            log.error("Storage commit failed: %s", e)
            return
        waiting, self._waiting = self._waiting, []
        self._notify(waiting, True)

    @staticmethod
    def _notify(callbacks, ok):
        for callback in callbacks:
            try:
                callback(ok)
            except Exception:
                log.exception("on_commit callback failed")

    def stop(self, timeout=5.0):
        """Stop the thread, then flush what is still queued into storage and commit."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        while True:
            group = self._take_group(0)
            if not group:
                break
            self._store(group, timeout)
        self._commit()
