"""The storage-writer thread: drains the bounded in-memory queue into EventStorage and
commits in groups.

Producers (connector threads) call `submit`, which blocks up to a timeout when the
queue is full: that is the backpressure connectors feel when storage cannot keep up.
The writer takes records in groups and commits when storage says a commit is due (by
count or by time), so one fsync covers many records. File storage asks the writer to hold
what its source sends again until acknowledged (a record with an on_commit callback: a
QoS 1 MQTT message) until the group's commit is due, and to put it just before the fsync:
written but not yet fsynced, it would survive a killed process and come a second time from
its device; held, it only comes again. What nobody sends again is written at once (a
killed process keeps what it wrote). A record's `on_commit` callback
runs on this thread once the record is durable (for memory storage: once stored).
"""
import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from thingsboard_gateway.runtime.batchqueue import BatchQueue
from thingsboard_gateway.runtime.liveness import Heart, beat_current
from thingsboard_gateway.runtime.together import together
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

FLUSH_PUT_TIMEOUT = 5.0  # on stop, how long storage may hold each group back when full

Callback = Optional[Callable[[bool], None]]
Entry = Tuple[Dict[str, Any], Callback, bool]  # a record, its on_commit, prompt


class StorageWriter(object):
    """Owns the `storage-writer` thread and the queue in front of storage."""

    def __init__(self, storage, queue_size=2000, stats=None, linger=LINGER, clock=time.monotonic):
        # type: (EventStorage, int, Any, float, Callable[[], float]) -> None
        self._storage = storage
        self._clock = clock
        self._linger = linger
        self._queue = BatchQueue(queue_size)
        self._stats = stats
        self._stop = threading.Event()
        self._thread = None  # type: Optional[threading.Thread]
        self._waiting = []  # type: List[Callable[[bool], None]]  callbacks of records not yet committed
        self._held = []  # type: List[Entry]  taken, not yet put (a storage that groups them)
        self._held_since = 0.0  # when the held group's first record came
        self._taken = 0.0  # when the last take returned
        # Beaten every round; storage beats it too while it waits for room (beat_current),
        # so only a write or commit that does not return leaves it silent (gateway/liveness.py).
        self.heart = Heart("storage-writer")

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
        # held back by a full queue is progress: the connector's heart beats (Connector.heart)
        return self._queue.put((record, on_commit, prompt), timeout, beat_current)

    def queued(self):
        # type: () -> int
        return self._queue.qsize()

    def _take_group(self, timeout):
        # type: (float) -> List[Entry]
        """Up to GROUP queued records, waiting up to `timeout` s for the first (and then
        lingering, when waiting was allowed)."""
        timeout = max(0.0, timeout)
        return self._queue.get_batch(GROUP, timeout, min(self._linger, timeout), self._stop)

    def _run(self):
        self.heart.attach()
        grouping = self._storage.group_commit()
        while not self._stop.is_set():
            self.heart.beat()
            due = self._storage.commit_wait()
            if self._held:
                release = max(0.0, self._held_since + grouping[0] - self._clock())
                due = release if due is None else min(due, release)
            queued = self._queue.qsize() > 0  # came while the last group was stored and committed
            group = self._take_group(IDLE_WAIT if due is None else min(due, IDLE_WAIT))
            if grouping is None or any(prompt for _, _, prompt in group):
                if group or self._held:  # a sender waits for one of them: all of it now
                    self._store(self._release() + group, None)
            else:
                self._hold(group, grouping, queued)
            due = self._storage.commit_wait()
            if due is not None and due <= 0 or (not group and due is not None):
                self._commit()
        self._flush()
        self.heart.stopped()

    def _flush(self):
        """What is held and queued into storage, committed: the last thing the writer's
        thread does (or stop()'s caller when the thread never ran), so that no two threads
        ever touch the held records or the storage's write side."""
        if self._held:
            self._store(self._release(), FLUSH_PUT_TIMEOUT)
        while True:
            group = self._take_group(0)
            if not group:
                break
            self._store(group, FLUSH_PUT_TIMEOUT)  # a full storage refuses them (counted) instead of waiting
        self._commit()

    def _hold(self, group, grouping, queued):
        # type: (List[Entry], Tuple[float, int], bool) -> None
        """Hold what its source sends again until acknowledged; write the rest at once (a
        killed process keeps what it wrote); put and commit the held group when it is due."""
        again = [entry for entry in group if entry[1] is not None]
        if len(again) < len(group):
            self._store([entry for entry in group if entry[1] is None], None)
        if again and not self._held:
            # Records that queued meanwhile came after the previous take: the group is due
            # one commit interval after that, not after this take.
            self._held_since = self._taken if queued else self._clock()
        self._held.extend(again)
        self._taken = self._clock()
        if self._held and (len(self._held) >= grouping[1] or self._taken - self._held_since >= grouping[0]):
            self._store(self._release(), None, commit=True)

    def _release(self):
        # type: () -> List[Entry]
        held, self._held = self._held, []
        return held

    def _store(self, group, timeout, commit=False):
        # type: (List[Entry], Optional[float], bool) -> bool
        try:
            self._storage.put([record for record, _, _ in group], timeout=timeout)
        except StorageFull as e:
            log.error("Storage refused %d records: %s", len(group), e)
            if self._stats is not None:
                self._stats.add("events_dropped", len(group))
            self._notify([cb for _, cb, _ in group if cb is not None], False)
            return False
        self._waiting.extend(cb for _, cb, _ in group if cb is not None)
        if commit or self._storage.commit_wait() is None or any(prompt for _, _, prompt in group):
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
        with together():  # what the callbacks ask to be done after them, once for the group
            for callback in callbacks:
                try:
                    callback(ok)
                except Exception:
                    log.exception("on_commit callback failed")

    def stop(self, timeout=5.0):
        # type: (float) -> bool
        """Stop the thread, which flushes what is still queued into storage and commits;
        False when it is not done within `timeout` s (a write that does not return): it
        goes on by itself once the write returns, and this thread does not touch storage."""
        self._stop.set()
        if self._thread is None:
            self._flush()
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("The storage writer did not finish within %.1f s (a storage write does not return); %d "
                      "record(s) wait in its queue", timeout, self._queue.qsize() + len(self._held))
            return False
        return True
