"""Memory storage: reads ahead of acks, forgets only acked prefixes, pushes back when full."""
import threading
import time

import pytest

from thingsboard_gateway.storage.base import StorageFull
from thingsboard_gateway.storage.memory import MemoryEventStorage


def recs(n, start=0):
    return [{"deviceName": "d", "seq": i} for i in range(start, start + n)]


def test_record_is_kept_until_acked():
    storage = MemoryEventStorage(100)
    storage.put(recs(5))
    first = storage.get_batch(3, timeout=0)
    second = storage.get_batch(3, timeout=0)
    assert [r["seq"] for r in first.records] == [0, 1, 2]
    assert [r["seq"] for r in second.records] == [3, 4]
    assert storage.get_batch(3, timeout=0) is None
    storage.ack(second)                 # out of order: nothing forgotten yet
    assert len(storage) == 5
    storage.ack(first)
    assert len(storage) == 0


def test_rewind_hands_out_unacked_again():
    storage = MemoryEventStorage(100)
    storage.put(recs(4))
    a = storage.get_batch(2, timeout=0)
    storage.get_batch(2, timeout=0)
    storage.ack(a)
    storage.rewind()
    again = storage.get_batch(10, timeout=0)
    assert [r["seq"] for r in again.records] == [2, 3]


def test_full_storage_blocks_then_raises():
    storage = MemoryEventStorage(3)
    storage.put(recs(3))
    started = time.monotonic()
    with pytest.raises(StorageFull):
        storage.put(recs(1), timeout=0.2)
    assert time.monotonic() - started >= 0.19


def test_ack_makes_room_for_a_blocked_producer():
    storage = MemoryEventStorage(2)
    storage.put(recs(2))
    done = threading.Event()

    def producer():
        storage.put(recs(1, 2), timeout=5)
        done.set()

    t = threading.Thread(target=producer)
    t.start()
    assert not done.wait(0.2)
    storage.ack(storage.get_batch(1, timeout=0))
    assert done.wait(5)
    t.join()
    assert len(storage) == 2


def test_get_batch_waits_for_data():
    storage = MemoryEventStorage(10)
    threading.Timer(0.1, storage.put, args=(recs(1),)).start()
    batch = storage.get_batch(5, timeout=5)
    assert batch is not None and len(batch) == 1


def test_close_wakes_waiters():
    storage = MemoryEventStorage(10)
    threading.Timer(0.1, storage.close).start()
    assert storage.get_batch(5, timeout=5) is None
