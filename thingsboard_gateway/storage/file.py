"""File storage: durable, append-only segments of CRC-framed records (see docs/STORAGE.md).

Threads: the storage-writer thread calls put/commit; the sender thread calls
get_batch/rewind; paho's thread calls ack. One lock guards the positions; the fsync of
a commit runs outside it. Only committed (fsynced) records are handed to the sender.

Positions are (segment number, byte offset). The read position in index.json is the end
of the longest acked prefix, written 20 ms after an ack and fsynced at most once a second:
a killed process sends again what was acked in its last 20 ms, a power cut its last second.
"""
import errno
import logging
import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from thingsboard_gateway.runtime.liveness import beat_current
from thingsboard_gateway.storage import frames, recovery
from thingsboard_gateway.storage.base import AckedPrefix, Batch, EventStorage, StorageFull
from thingsboard_gateway.storage.record import Record
from thingsboard_gateway.storage.segments import (IndexFile, frames_before, fsync_folder, open_storage_folder,
                                                  segment_path, unlock_folder, write_index)

log = logging.getLogger(__name__)

Position = Tuple[int, int]
READ_CHUNK = 256 * 1024
ENOSPC_RETRY_MAX = 30.0
INDEX_SYNC_INTERVAL = 1.0  # the index is fsynced at most this often (segments.IndexFile)
INDEX_WRITE_INTERVAL = 0.02  # and written this long after an acknowledgement (no fsync)


class FileBatch(Batch):
    """A batch with where it ends on disk and the generation it was read in."""

    __slots__ = ("end", "generation")

    def __init__(self, first, records, end, generation):
        super(FileBatch, self).__init__(first, records)
        self.end = end  # type: Position
        self.generation = generation


class FileEventStorage(EventStorage):
    """Records in `data_<n>.dat` segments under `folder`; survives crashes and power loss."""

    def __init__(self, folder, max_records_per_file=10000, max_file_size=None, max_file_count=10,
                 commit_interval=0.1, commit_records=500, overflow="block", stats=None, clock=time.monotonic):
        self._folder = folder
        self._max_records_per_file = max_records_per_file
        self._max_file_size = max_file_size
        self._max_file_count = max_file_count
        self._commit_interval = commit_interval
        self._commit_records = commit_records
        self._overflow = overflow
        self._stats = stats
        self._clock = clock
        self._lock_fd = open_storage_folder(folder, "data_folder_path")
        self._lock = threading.Lock()
        self._has_data = threading.Condition(self._lock)
        self._acked_cond = threading.Condition(self._lock)
        self._closed = False
        self._data_fsyncs = 0
        try:
            self._recover()
        except BaseException:
            unlock_folder(self._lock_fd)
            raise

    # -- start-up ---------------------------------------------------------------------
    def _recover(self):
        report = recovery.examine(self._folder)
        lost = recovery.repair(self._folder, report)
        if lost:
            log.error("Storage recovery dropped %d record(s) in %s", lost, self._folder)
            if self._stats is not None:
                self._stats.add("storage_recovery_dropped", lost)
        self._seg_records = {s.number: len(s.scan.frames) for s in report.segments}  # type: Dict[int, int]
        self._pending = report.pending
        self._acked = (report.read_segment, report.read_offset)  # type: Position
        self._read = self._acked
        self._generation = self._read_seq = 0
        self._acks = AckedPrefix()
        self._index_dirty = False  # acknowledged since the index was last written
        self._dirty_since = 0.0
        self._index = IndexFile(self._folder, self._acked, self._clock, INDEX_SYNC_INTERVAL)
        numbers = sorted(self._seg_records)
        if numbers:
            last = numbers[-1]
            size = os.path.getsize(segment_path(self._folder, last))
            self._open_write_segment(last, size, self._seg_records[last])
        else:
            self._open_write_segment(report.read_segment, 0, 0)
            write_index(self._folder, report.read_segment, 0)
        self._committed = (self._write_seg, self._write_size)  # type: Position
        self._uncommitted, self._uncommitted_since = 0, 0.0
        self._reader = None  # type: Optional[Tuple[int, int]]  (segment, fd)
        if report.pending:
            log.info("File storage %s: %d record(s) waiting in %d segment(s)", self._folder, report.pending,
                     len(numbers))

    def _open_write_segment(self, number, size, records):
        """Write into segment `number`; under the lock, as the sender walks _seg_records."""
        fd = os.open(segment_path(self._folder, number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        with self._lock:
            self._write_seg, self._write_fd, self._write_size = number, fd, size
            self._seg_records.setdefault(number, records)
            if size == 0:
                self._committed = (number, 0)  # a rotation: the new segment's start
        if size == 0:
            fsync_folder(self._folder)

    # -- writing (storage-writer thread) ----------------------------------------------
    def put(self, records, timeout=None):
        # type: (List[Record], Optional[float]) -> None
        deadline = None if timeout is None else self._clock() + timeout
        encode = frames.encode
        position = 0
        while position < len(records):
            room = self._max_records_per_file - self._seg_records[self._write_seg]
            if room <= 0:
                self._rotate(deadline)
                continue
            chunk = [encode(record.encode()) for record in records[position:position + room]]
            if self._max_file_size is not None:
                chunk = self._fit_size(chunk)
                if not chunk:
                    self._rotate(deadline)
                    continue
            self._write(chunk, deadline)
            position += len(chunk)

    def _fit_size(self, chunk):
        # type: (List[bytes]) -> List[bytes]
        """The frames of chunk that fit the segment's max_file_size (at least one in an
        empty segment, so a record larger than the limit still goes)."""
        size = self._write_size
        for i, frame in enumerate(chunk):
            size += len(frame)
            if size > self._max_file_size and (i or self._seg_records[self._write_seg]):
                return chunk[:i]
        return chunk

    def _write(self, chunk, deadline):
        if not chunk:
            return
        count = len(chunk)
        data = b"".join(chunk)
        delay = 0.1
        while True:
            if self._closed:
                raise StorageFull("storage is closed")
            try:
                written = 0
                while written < len(data):
                    written += os.write(self._write_fd, data[written:])
                break
            except OSError as e:
                os.ftruncate(self._write_fd, self._write_size)  # no half frame stays behind
                if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                if deadline is not None and self._clock() + delay > deadline:
                    raise StorageFull("disk full writing %s" % self._folder)
                log.error("Disk full writing %s; retrying in %.1f s", self._folder, delay)
                if self._stats is not None:
                    self._stats.add("storage_disk_full", 1)
                time.sleep(delay)
                beat_current()  # waiting for room is not a stuck writer
                delay = min(delay * 2, ENOSPC_RETRY_MAX)
        with self._lock:
            if self._uncommitted == 0:
                self._uncommitted_since = self._clock()
            self._write_size += len(data)
            self._seg_records[self._write_seg] += count
            self._uncommitted += count
            self._pending += count

    def _rotate(self, deadline):
        self.commit()
        while len(self._seg_records) >= self._max_file_count:
            self._make_room(deadline)
        old_fd = self._write_fd
        self._open_write_segment(self._write_seg + 1, 0, 0)
        os.close(old_fd)

    def _make_room(self, deadline):
        self._persist_acks()
        with self._lock:
            if len(self._seg_records) < self._max_file_count:
                return
            if self._overflow == "drop_oldest" and len(self._seg_records) > 1:
                self._drop_oldest_locked()
                return
            remaining = None if deadline is None else deadline - self._clock()
            if self._closed or (remaining is not None and remaining <= 0):
                raise StorageFull("file storage holds %d segments (max_file_count)" % len(self._seg_records))
            self._acked_cond.wait(min(remaining, 1.0) if remaining is not None else 1.0)
        beat_current()  # waiting for room is not a stuck writer

    def _drop_oldest_locked(self):
        oldest = min(self._seg_records)
        lost = self._seg_records.pop(oldest)
        if self._acked[0] == oldest:
            lost -= frames_before(self._folder, oldest, self._acked[1])
        os.remove(segment_path(self._folder, oldest))
        self._pending -= lost
        start = (min(self._seg_records), 0)
        if self._acked < start:
            self._acked = self._read = start
            self._generation += 1  # batches in flight from before are stale
            self._acks = AckedPrefix(self._read_seq)
            self._close_reader()
            self._index_dirty = True  # written at the next commit (before it, recovery skips the segment)
        log.error("Storage full (max_file_count %d): dropped the oldest segment data_%d.dat with %d unsent "
                  "record(s)", self._max_file_count, oldest, lost)
        if self._stats is not None:
            self._stats.add("events_dropped", lost)

    def commit(self):
        """fsync what was written; write the acked read position; delete acked segments."""
        self._persist_acks()  # what the platform acknowledged meanwhile: not behind a slow fsync
        with self._lock:
            pending = self._uncommitted
            position = (self._write_seg, self._write_size)
        if pending:
            os.fsync(self._write_fd)
            self._data_fsyncs += 1
            with self._lock:
                self._uncommitted -= pending
                self._committed = max(self._committed, position)
                self._has_data.notify_all()
        self._persist_acks()

    fsyncs = property(lambda self: self._data_fsyncs + self._index.fsyncs, doc="fsync calls so far")

    def commit_wait(self):
        # type: () -> Optional[float]
        with self._lock:
            if self._uncommitted >= self._commit_records:
                return 0.0
            if self._uncommitted:
                return max(0.0, self._uncommitted_since + self._commit_interval - self._clock())
            if self._index_dirty:
                return max(0.0, self._dirty_since + INDEX_WRITE_INTERVAL - self._clock())
        return self._index.sync_wait()

    def group_commit(self):
        # type: () -> Optional[Tuple[float, int]]
        return self._commit_interval, self._commit_records

    def _settle_acked_locked(self):
        # type: () -> Position
        """The acked position moved over wholly acked segments, marked as written."""
        segment, offset = self._acked
        while segment != self._write_seg and offset >= self._segment_size(segment):
            segment, offset = self._next_segment(segment), 0  # a fully acked segment
        self._acked = (segment, offset)
        if self._read < self._acked:
            self._read = self._acked
        self._index_dirty = False
        return self._acked

    def _persist_acks(self, durable=None):
        """At each commit (writer thread): write the acked position to the index outside
        the lock, so the sender and the platform's acknowledgements never wait for it (the
        index makes it durable when due); then delete wholly acked segments."""
        with self._lock:
            position = self._settle_acked_locked() if self._index_dirty else None
        self._index.write(position, durable)
        if position is not None:
            with self._lock:
                acked = [n for n in self._seg_records if n < position[0] and n != self._write_seg]
                for number in acked:
                    del self._seg_records[number]
                self._acked_cond.notify_all()
            for number in acked:
                os.remove(segment_path(self._folder, number))

    # -- reading (sender thread) --------------------------------------------------------
    def get_batch(self, max_records, timeout=None):
        # type: (int, Optional[float]) -> Optional[Batch]
        with self._lock:
            if self._read >= self._committed and not self._closed:
                self._has_data.wait(timeout)
            if self._closed or self._read >= self._committed:
                return None
            records, end = self._read_locked(max_records)
            if not records:
                return None
            batch = FileBatch(self._read_seq, records, end, self._generation)
            self._read_seq += len(records)
            self._read = end
            return batch

    def _reader_fd(self, number):
        if self._reader is not None and self._reader[0] == number:
            return self._reader[1]
        self._close_reader()
        fd = os.open(segment_path(self._folder, number), os.O_RDONLY)
        self._reader = (number, fd)
        return fd

    def _close_reader(self):
        if self._reader is not None:
            os.close(self._reader[1])
            self._reader = None

    def _read_locked(self, max_records):
        # type: (int) -> Tuple[List[Dict[str, Any]], Position]
        records = []  # type: List[Dict[str, Any]]
        segment, offset = self._read
        while len(records) < max_records and (segment, offset) < self._committed:
            end = self._committed[1] if segment == self._committed[0] else self._segment_size(segment)
            if offset >= end:
                segment, offset = self._next_segment(segment), 0
                continue
            fd = self._reader_fd(segment)
            data = os.pread(fd, min(READ_CHUNK, end - offset), offset)
            position = 0
            while len(records) < max_records and position < len(data):
                length = frames.frame_at(data, position)
                if length is not None:
                    payload = data[position + frames.HEADER_SIZE:position + frames.HEADER_SIZE + length]
                    records.append(self._decode(segment, offset + position, payload))
                    position += frames.HEADER_SIZE + length
                elif offset + len(data) < end:  # the chunk may have cut the frame
                    if position:
                        break  # read on from here
                    data = os.pread(fd, end - offset, offset)  # a frame larger than a chunk
                else:
                    position = self._skip_damage(segment, offset, data, position)
            offset += position
        return records, (segment, offset)

    def _decode(self, segment, offset, payload):
        try:
            return Record.decode(payload)
        except (ValueError, UnicodeDecodeError):  # CRC-valid but not ours: never crash the sender
            log.error("Storage: unreadable record in data_%d.dat at offset %d", segment, offset)
            return Record('"?"', '"default"', [], "")

    def _skip_damage(self, segment, offset, data, position):
        following = frames.next_good(data, position + 1)
        skip_to = len(data) if following is None else following
        log.error("Storage: damaged record in data_%d.dat at offset %d skipped", segment, offset + position)
        if self._stats is not None:
            self._stats.add("storage_read_damaged", 1)
        self._pending -= 1
        return skip_to

    def _segment_size(self, number):
        if number == self._write_seg:
            return self._write_size
        return os.path.getsize(segment_path(self._folder, number))

    def _next_segment(self, number):
        later = [n for n in self._seg_records if n > number]
        return min(later) if later else number + 1

    def rewind(self):
        with self._lock:
            self._read = self._acked
            self._read_seq = self._acks.head
            self._acks.reset()

    # -- acknowledging (paho's thread) ----------------------------------------------------
    def ack(self, batch):
        # type: (Batch) -> None
        with self._lock:
            if getattr(batch, "generation", None) != self._generation:
                return
            released = self._acks.ack(batch.first, batch.first + len(batch.records), batch.end)
            if released is not None:
                self._pending -= released[0]
                self._acked = max(self._acked, released[1])
                if not self._index_dirty:
                    self._dirty_since = self._clock()
                self._index_dirty = True
            self._acked_cond.notify_all()

    def __len__(self):
        with self._lock:
            return self._pending

    def close(self):
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._has_data.notify_all()
            self._acked_cond.notify_all()
        self.commit()
        self._persist_acks(durable=True)
        with self._lock:
            self._close_reader()
            os.close(self._write_fd)
        unlock_folder(self._lock_fd)
