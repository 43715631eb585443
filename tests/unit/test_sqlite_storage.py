"""SQLite storage: the same at-least-once semantics, TTL expiry counted."""
from thingsboard_gateway.gateway.statistics import Statistics
from thingsboard_gateway.storage.sqlite import SqliteEventStorage
from tests.support.records import recs, seq_of


def seqs(batch):
    return [seq_of(r) for r in batch.records]


def test_round_trip_survives_reopen(tmp_path):
    path = str(tmp_path / "data.db")
    storage = SqliteEventStorage(path)
    storage.put(recs(10))
    assert storage.get_batch(10, timeout=0) is None       # not committed yet
    storage.commit()
    a = storage.get_batch(4, timeout=0)
    b = storage.get_batch(4, timeout=0)
    storage.ack(b)                                         # out of order: nothing forgotten
    storage.commit()
    storage.close()
    storage = SqliteEventStorage(path)
    assert len(storage) == 10
    a = storage.get_batch(4, timeout=0)
    storage.ack(a)
    storage.commit()
    storage.close()
    storage = SqliteEventStorage(path)
    assert seqs(storage.get_batch(100, timeout=0)) == list(range(4, 10))
    storage.close()


def test_folder_path_as_upstream_example_names_it(tmp_path):
    storage = SqliteEventStorage(str(tmp_path) + "/")
    storage.close()
    assert (tmp_path / "data.db").exists()


def test_ttl_expiry_is_counted(tmp_path):
    now = [1000000.0]
    path = str(tmp_path / "data.db")
    storage = SqliteEventStorage(path, clock=lambda: now[0])
    storage.put(recs(3))
    storage.commit()
    storage.close()
    now[0] += 8 * 86400
    stats = Statistics()
    storage = SqliteEventStorage(path, ttl_days=7, stats=stats, clock=lambda: now[0])
    assert stats.get("storage_expired") == 3 and len(storage) == 0
    storage.close()


def test_rewind(tmp_path):
    storage = SqliteEventStorage(str(tmp_path / "d.db"))
    storage.put(recs(4))
    storage.commit()
    a = storage.get_batch(2, timeout=0)
    storage.get_batch(2, timeout=0)
    storage.ack(a)
    storage.rewind()
    assert seqs(storage.get_batch(10, timeout=0)) == [2, 3]
    storage.close()
