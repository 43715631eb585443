"""SQLite storage: one table in WAL mode, batched transactions, TTL expiry.

Threads: the storage-writer thread inserts (put) and commits; the sender thread reads
(get_batch); paho's thread acks. One connection guarded by a lock. Acked rows are
deleted at the next commit; rows older than `messages_ttl_in_days` are deleted every
`messages_ttl_check_in_hours` and counted as dropped.
"""
import logging
import os
import sqlite3
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.storage.base import AckedPrefix, Batch, EventStorage, StorageFull
from thingsboard_gateway.storage.record import Record
from thingsboard_gateway.storage.segments import open_storage_folder, unlock_folder

log = logging.getLogger(__name__)

SCHEMA = "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, " \
         "payload TEXT NOT NULL)"


class SqliteBatch(Batch):
    __slots__ = ("last_id",)

    def __init__(self, first, records, last_id):
        super(SqliteBatch, self).__init__(first, records)
        self.last_id = last_id


class SqliteEventStorage(EventStorage):
    """Records in an SQLite database file; survives crashes (WAL, synchronous=FULL)."""

    def __init__(self, path, ttl_days=7.0, ttl_check_hours=1.0, commit_interval=0.1, commit_records=500,
                 max_records=None, stats=None, clock=time.time):
        if path.endswith("/") or os.path.isdir(path):
            path = os.path.join(path, "data.db")  # upstream's example names a folder
        self._path = path
        folder = os.path.dirname(os.path.abspath(path))
        self._lock_fd = open_storage_folder(folder, "data_file_path")
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(SCHEMA)
        except sqlite3.Error as e:
            unlock_folder(self._lock_fd)
            raise ConfigError("tb_gateway.json", "storage.data_file_path", "cannot open %s: %s" % (path, e))
        self._ttl = ttl_days * 86400.0
        self._ttl_check = ttl_check_hours * 3600.0
        self._commit_interval = commit_interval
        self._commit_records = commit_records
        self._max_records = max_records
        self._stats = stats
        self._clock = clock
        self._lock = threading.Lock()
        self._has_data = threading.Condition(self._lock)
        self._closed = False
        self._in_transaction = False
        self._uncommitted = 0
        self._uncommitted_since = 0.0
        self._next_ttl_check = clock()
        self._read_id = 0            # highest id handed out
        self._acked_id = 0           # highest id of the acked prefix
        self._deleted_id = 0
        self._committed_id = self._max_id()
        self._seq = 0
        self._acks = AckedPrefix()
        self._count = self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        self.fsyncs = 0
        self._expire()

    def _max_id(self):
        return self._db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]

    # -- writer thread ------------------------------------------------------------------
    def put(self, records, timeout=None):
        # type: (List[Dict[str, Any]], Optional[float]) -> None
        now = self._clock()
        rows = [(now, r.encode().decode("ascii")) for r in records]
        with self._lock:
            if self._closed:
                raise StorageFull("storage is closed")
            if self._max_records is not None and self._count + len(rows) > self._max_records:
                raise StorageFull("sqlite storage holds %d records" % self._count)
            try:
                if not self._in_transaction:
                    self._db.execute("BEGIN")
                    self._in_transaction = True
                    self._uncommitted_since = self._clock()
                self._db.executemany("INSERT INTO events (ts, payload) VALUES (?, ?)", rows)
            except sqlite3.OperationalError as e:  # disk full, I/O error: the writer retries later
                raise StorageFull("sqlite: %s" % e)
            self._uncommitted += len(rows)
            self._count += len(rows)

    def commit(self):
        """One transaction (one fsync): the inserted rows, and deleting the acked ones."""
        with self._lock:
            if self._closed:
                return
            if self._acked_id > self._deleted_id:
                if not self._in_transaction:
                    self._db.execute("BEGIN")
                    self._in_transaction = True
                self._db.execute("DELETE FROM events WHERE id <= ?", (self._acked_id,))
                self._deleted_id = self._acked_id
            if self._in_transaction:
                self._db.execute("COMMIT")
                self._in_transaction = False
                self.fsyncs += 1
                self._uncommitted = 0
                self._committed_id = self._max_id()
                self._has_data.notify_all()
            if self._clock() >= self._next_ttl_check:
                self._expire()

    def commit_wait(self):
        # type: () -> Optional[float]
        with self._lock:
            if self._uncommitted >= self._commit_records:
                return 0.0
            if self._uncommitted:
                return max(0.0, self._uncommitted_since + self._commit_interval - self._clock())
            return self._commit_interval if self._acked_id > self._deleted_id else None

    def _expire(self):
        self._next_ttl_check = self._clock() + self._ttl_check
        if self._in_transaction:
            return
        cursor = self._db.execute("DELETE FROM events WHERE ts < ?", (self._clock() - self._ttl,))
        if cursor.rowcount > 0:
            self._count -= cursor.rowcount
            log.warning("SQLite storage: %d record(s) older than %.1f days expired", cursor.rowcount,
                        self._ttl / 86400.0)
            if self._stats is not None:
                self._stats.add("storage_expired", cursor.rowcount)

    # -- sender thread --------------------------------------------------------------------
    def get_batch(self, max_records, timeout=None):
        # type: (int, Optional[float]) -> Optional[Batch]
        with self._lock:
            if self._read_id >= self._committed_id and not self._closed:
                self._has_data.wait(timeout)
            if self._closed or self._read_id >= self._committed_id:
                return None
            rows = self._db.execute("SELECT id, payload FROM events WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
                                    (self._read_id, self._committed_id, max_records)).fetchall()
            if not rows:
                self._read_id = self._committed_id
                return None
            batch = SqliteBatch(self._seq, [Record.decode(p.encode("ascii")) for _, p in rows], rows[-1][0])
            self._seq += len(rows)
            self._read_id = rows[-1][0]
            return batch

    def rewind(self):
        with self._lock:
            self._read_id = self._acked_id
            self._seq = self._acks.head
            self._acks.reset()

    # -- paho thread ------------------------------------------------------------------------
    def ack(self, batch):
        # type: (Batch) -> None
        with self._lock:
            released = self._acks.ack(batch.first, batch.first + len(batch.records), batch.last_id)
            if released is not None:
                self._count -= released[0]
                self._acked_id = max(self._acked_id, released[1])

    def __len__(self):
        with self._lock:
            return self._count

    def close(self):
        self.commit()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._has_data.notify_all()
            self._db.close()
        unlock_folder(self._lock_fd)
