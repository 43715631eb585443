"""The storage writer in front of file storage: a group is held in memory until its commit
is due and then written and fsynced at once, so a killed process leaves no written but
unacknowledged record behind (its device sends it again: it would come twice)."""
import os

import pytest

from thingsboard_gateway.storage.file import FileEventStorage
from thingsboard_gateway.storage.segments import segment_path
from thingsboard_gateway.storage.writer import StorageWriter
from tests.support.records import drain, recs
from tests.support.waiting import wait_until


def segment_bytes(folder):
    return os.path.getsize(segment_path(str(folder), 0))


@pytest.fixture
def writing(tmp_path):
    """writing(commit_records) -> (storage, writer), a writer running in front of file
    storage whose commit interval never comes due in a test; both closed at teardown."""
    opened = []

    def start(commit_records=1000):
        storage = FileEventStorage(str(tmp_path), commit_interval=30.0, commit_records=commit_records)
        writer = StorageWriter(storage)
        writer.start()
        opened.append((storage, writer))
        return storage, writer

    yield start
    for storage, writer in opened:
        writer.stop()
        storage.close()


def test_a_group_is_written_only_when_its_commit_is_due(tmp_path, writing):
    storage, writer = writing(commit_records=8)
    committed = []
    for record in recs(5):
        assert writer.submit(record, timeout=1, on_commit=committed.append)
    wait_until(lambda: writer.queued() == 0, what="the writer took the records")
    assert segment_bytes(tmp_path) == 0 and committed == []  # held: nothing on disk, nothing acked
    for record in recs(3, start=5):
        writer.submit(record, timeout=1, on_commit=committed.append)
    wait_until(lambda: len(committed) == 8, what="the group of 8 committed")  # commit_records reached
    assert committed == [True] * 8 and segment_bytes(tmp_path) > 0
    assert drain(storage) == list(range(8))


def test_a_prompt_record_is_written_and_committed_at_once(writing):
    storage, writer = writing()
    committed = []
    writer.submit(recs(1)[0], timeout=1, on_commit=committed.append)
    writer.submit(recs(1, start=1)[0], timeout=1, on_commit=committed.append, prompt=True)
    wait_until(lambda: len(committed) == 2, what="both committed")
    assert drain(storage) == [0, 1]


def test_stop_writes_and_commits_what_is_held(tmp_path):
    storage = FileEventStorage(str(tmp_path), commit_interval=30.0, commit_records=1000)
    writer = StorageWriter(storage)
    writer.start()
    committed = []
    try:
        for record in recs(4):
            writer.submit(record, timeout=1, on_commit=committed.append)
        wait_until(lambda: writer.queued() == 0, what="the writer took the records")
    finally:
        writer.stop()
    assert committed == [True] * 4
    storage.close()
    reopened = FileEventStorage(str(tmp_path))
    try:
        assert drain(reopened) == [0, 1, 2, 3]
    finally:
        reopened.close()


def test_what_nobody_sends_again_is_written_at_once(tmp_path):
    """A record without on_commit (a polled value, a serial line) goes to the segment file
    as it comes, so a killed process keeps it; one whose source resends it is held."""
    storage = FileEventStorage(str(tmp_path), commit_interval=30.0, commit_records=1000)
    writer = StorageWriter(storage)
    writer.start()
    try:
        writer.submit(recs(1)[0], timeout=1)
        wait_until(lambda: segment_bytes(tmp_path) > 0, what="the record without a callback written")
        written = segment_bytes(tmp_path)
        writer.submit(recs(1, start=1)[0], timeout=1, on_commit=lambda ok: None)
        wait_until(lambda: writer.queued() == 0, what="the writer took the record")
        assert segment_bytes(tmp_path) == written  # held
    finally:
        writer.stop()
        storage.close()
    reopened = FileEventStorage(str(tmp_path))
    try:
        assert drain(reopened) == [0, 1]
    finally:
        reopened.close()


class BlockingStorage(object):
    """Memory storage whose commit waits for `release` while `blocking` is set; records
    which threads wrote."""

    def __init__(self):
        from thingsboard_gateway.storage.memory import MemoryEventStorage
        import threading
        self.inner = MemoryEventStorage(10000)
        self.blocking = threading.Event()
        self.release = threading.Event()
        self.in_commit = threading.Event()
        self.writers = set()

    def group_commit(self):
        return None

    def commit_wait(self):
        return 0.0 if self.blocking.is_set() else None

    def put(self, records, timeout=None):
        import threading
        self.writers.add(threading.current_thread().name)
        self.inner.put(records, timeout)

    def commit(self):
        import threading
        self.writers.add(threading.current_thread().name)
        if self.blocking.is_set():
            self.in_commit.set()
            self.release.wait(10)


def test_stop_never_touches_storage_while_the_writer_is_in_a_write_that_does_not_return():
    storage = BlockingStorage()
    writer = StorageWriter(storage)
    writer.start()
    storage.blocking.set()
    writer.submit(recs(1)[0], 1.0)
    wait_until(storage.in_commit.is_set, what="the writer in a commit that does not return")
    for record in recs(5, 1):
        writer.submit(record, 1.0)
    assert writer.stop(timeout=0.2) is False               # it said so, and did not store on this thread
    assert storage.writers == {"storage-writer"}
    storage.release.set()                                  # the write returns: the writer flushes by itself
    wait_until(lambda: len(storage.inner) == 6, what="the queued records stored by the writer's thread")
    assert storage.writers == {"storage-writer"}


def test_a_producer_held_back_by_a_full_queue_keeps_its_heart_beating():
    """Backpressure is progress: a connector thread waiting for room must not look stuck
    to the supervisor (which would restart it again and again during a long outage)."""
    import threading
    import time
    from thingsboard_gateway.runtime.liveness import Heart
    writer = StorageWriter(BlockingStorage(), queue_size=1)  # not started: nothing drains the queue
    heart = Heart("connector:test")
    results = []

    def produce():
        heart.attach()
        heart.beat()
        results.append(writer.submit(recs(1)[0], 1.0))
        results.append(writer.submit(recs(1, 1)[0], 2.5))  # waits for room, then gives up

    thread = threading.Thread(target=produce)
    thread.start()
    time.sleep(2.0)
    silent = heart.silent_for(time.monotonic())
    thread.join(5)
    assert results == [True, False]
    assert silent < 1.5
