"""File storage: durability, rotation, overflow policies, recovery of damaged folders."""
import errno
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.gateway.statistics import Statistics
from thingsboard_gateway.storage import file as file_module
from thingsboard_gateway.storage.base import StorageFull
from thingsboard_gateway.storage.file import FileEventStorage
from thingsboard_gateway.storage.segments import segment_numbers, segment_path
from tests.support.records import Record, drain, recs, seq_of


def open_storage(folder, **kwargs):
    kwargs.setdefault("max_records_per_file", 10)
    kwargs.setdefault("max_file_count", 100)
    return FileEventStorage(str(folder), **kwargs)


def test_committed_records_survive_reopen_and_acked_do_not_return(tmp_path):
    storage = open_storage(tmp_path)
    storage.put(recs(25))
    storage.commit()
    first = storage.get_batch(12, timeout=0)
    storage.ack(first)
    storage.close()
    storage = open_storage(tmp_path)
    assert len(storage) == 13
    assert drain(storage) == list(range(12, 25))
    storage.close()


def test_only_committed_records_are_read(tmp_path):
    storage = open_storage(tmp_path, max_records_per_file=1000)
    storage.put(recs(3))
    assert storage.get_batch(10, timeout=0) is None
    assert storage.commit_wait() is not None
    storage.commit()
    assert [seq_of(r) for r in storage.get_batch(10, timeout=0).records] == [0, 1, 2]
    storage.close()


def test_group_commit_is_due_by_count_or_time(tmp_path):
    now = [0.0]
    storage = open_storage(tmp_path, commit_records=5, commit_interval=0.1, clock=lambda: now[0])
    storage.put(recs(2))
    assert storage.commit_wait() == pytest.approx(0.1)
    now[0] = 0.15
    assert storage.commit_wait() == 0.0
    storage.commit()
    storage.put(recs(5))
    assert storage.commit_wait() == 0.0
    storage.close()


def test_rotation_and_deletion_of_acked_segments(tmp_path):
    storage = open_storage(tmp_path)
    storage.put(recs(35))
    storage.commit()
    assert segment_numbers(str(tmp_path)) == [0, 1, 2, 3]
    batch = storage.get_batch(20, timeout=0)
    storage.ack(batch)
    storage.commit()
    assert segment_numbers(str(tmp_path)) == [2, 3]
    assert drain(storage) == list(range(20, 35))
    storage.close()


def test_out_of_order_acks_advance_only_over_a_prefix(tmp_path):
    storage = open_storage(tmp_path)
    storage.put(recs(10))
    storage.commit()
    a, b = storage.get_batch(5, timeout=0), storage.get_batch(5, timeout=0)
    storage.ack(b)
    storage.commit()
    storage.close()
    storage = open_storage(tmp_path)
    assert drain(storage, ack=False) == list(range(10))  # a was never acked: everything again
    storage.close()


def test_rewind_hands_out_unacked_again(tmp_path):
    storage = open_storage(tmp_path)
    storage.put(recs(6))
    storage.commit()
    a = storage.get_batch(3, timeout=0)
    storage.get_batch(3, timeout=0)
    storage.ack(a)
    storage.rewind()
    assert drain(storage) == [3, 4, 5]
    storage.close()


def test_max_file_count_blocks_producer(tmp_path):
    storage = open_storage(tmp_path, max_file_count=2)
    storage.put(recs(20), timeout=1)
    storage.commit()
    with pytest.raises(StorageFull):
        storage.put(recs(1, 20), timeout=0.3)
    storage.ack(storage.get_batch(10, timeout=0))
    storage.put(recs(1, 20), timeout=2)   # acking the first segment made room
    storage.commit()
    assert drain(storage) == list(range(10, 21))
    storage.close()


def test_max_file_count_drop_oldest_counts_dropped(tmp_path):
    stats = Statistics()
    storage = open_storage(tmp_path, max_file_count=2, overflow="drop_oldest", stats=stats)
    storage.put(recs(25))
    storage.commit()
    assert stats.get("events_dropped") == 10
    assert drain(storage) == list(range(10, 25))
    storage.close()


def damage_and_reopen(tmp_path, mutate, **kwargs):
    storage = open_storage(tmp_path, max_records_per_file=100)
    storage.put(recs(30))
    storage.close()
    path = segment_path(str(tmp_path), 0)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data = mutate(data)
    with open(path, "wb") as f:
        f.write(data)
    stats = Statistics()
    storage = open_storage(tmp_path, max_records_per_file=100, stats=stats, **kwargs)
    got = drain(storage)
    storage.close()
    return got, stats.get("storage_recovery_dropped")


def frame_offsets(tmp_path):
    from thingsboard_gateway.storage import frames
    with open(segment_path(str(tmp_path), 0), "rb") as f:
        return [o for o, _ in frames.scan(f.read()).frames]


def test_torn_tail_is_cut_at_the_last_good_frame(tmp_path):
    got, dropped = damage_and_reopen(tmp_path, lambda d: d[:-5])
    assert got == list(range(29)) and dropped == 1


def test_crc_failure_skips_one_frame_and_later_frames_survive(tmp_path):
    def flip(d):
        d[200] ^= 0xFF
        return d
    got, dropped = damage_and_reopen(tmp_path, flip)
    assert dropped == 1 and len(got) == 29
    assert got == sorted(got) and set(range(30)) - set(got) != set()


def test_corrupt_index_is_rebuilt(tmp_path):
    storage = open_storage(tmp_path)
    storage.put(recs(15))
    storage.commit()
    storage.ack(storage.get_batch(12, timeout=0))
    storage.close()
    (tmp_path / "index.json").write_text("{garbage")
    storage = open_storage(tmp_path)
    # Acked segment 0 was deleted; its acked part of segment 1 comes again (bounded by a segment).
    assert drain(storage) == list(range(10, 15))
    storage.close()


def test_missing_index_is_rebuilt(tmp_path):
    storage = open_storage(tmp_path)
    storage.put(recs(5))
    storage.close()
    os.remove(str(tmp_path / "index.json"))
    storage = open_storage(tmp_path)
    assert drain(storage) == list(range(5))
    storage.close()


def test_index_offset_inside_a_frame_moves_back_to_it(tmp_path):
    storage = open_storage(tmp_path)
    storage.put(recs(5))
    storage.close()
    offsets = frame_offsets(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({"version": 1, "read_segment": 0,
                                                     "read_offset": offsets[2] + 3}))
    storage = open_storage(tmp_path)
    assert drain(storage) == [2, 3, 4]
    storage.close()


def test_missing_folder_is_created(tmp_path):
    folder = tmp_path / "a" / "b"
    storage = open_storage(folder)
    assert folder.is_dir()
    storage.close()


def test_second_owner_is_refused(tmp_path):
    storage = open_storage(tmp_path)
    with pytest.raises(ConfigError) as info:
        open_storage(tmp_path)
    assert "in use by another process (pid %d)" % os.getpid() in str(info.value)
    storage.close()


def _open_as_nobody(folder):
    """Try to open storage in a forked child that dropped root; return what it said."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no exec needed, everything is imported already
        try:
            os.setgid(65534)
            os.setuid(65534)
            try:
                FileEventStorage(folder)
                message = "opened"
            except ConfigError as e:
                message = str(e)
            except Exception as e:
                message = "unexpected %r" % e
            os.write(write_end, message.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        message = f.read().decode()
    os.waitpid(pid, 0)
    return message


def test_unwritable_folder_is_a_clear_error():
    base = tempfile.mkdtemp(prefix="tb-gw-perm-")
    try:
        os.chmod(base, 0o755)
        folder = os.path.join(base, "locked")
        os.mkdir(folder, 0o555)
        os.chmod(folder, 0o555)
        if os.geteuid() == 0:  # root ignores permissions: try it as nobody
            message = _open_as_nobody(folder)
        else:
            with pytest.raises(ConfigError) as info:
                FileEventStorage(folder)
            message = str(info.value)
        assert message == "tb_gateway.json: storage.data_folder_path: cannot write %s: permission denied" % folder
    finally:
        os.chmod(os.path.join(base, "locked"), 0o755)
        shutil.rmtree(base)


def test_disk_full_backs_off_and_retries(tmp_path, monkeypatch):
    storage = open_storage(tmp_path)
    real_write = os.write
    failures = [2]

    def flaky_write(fd, data):
        if fd == storage._write_fd and failures[0]:
            failures[0] -= 1
            real_write(fd, data[:3])  # a partial write, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(file_module.os, "write", flaky_write)
    monkeypatch.setattr(file_module.time, "sleep", lambda s: None)
    storage.put(recs(3))
    monkeypatch.setattr(file_module.os, "write", real_write)
    storage.commit()
    assert drain(storage) == [0, 1, 2]
    storage.close()


def test_disk_full_with_deadline_raises_storage_full(tmp_path, monkeypatch):
    storage = open_storage(tmp_path)

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(file_module.os, "write", full)
    with pytest.raises(StorageFull):
        storage.put(recs(1), timeout=0.05)
    monkeypatch.undo()
    storage.close()


@pytest.fixture
def small_tmpfs(tmp_path):
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if result.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root): %s" % result.stderr.decode().strip())
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)])


def test_real_enospc_on_a_full_tmpfs(small_tmpfs, monkeypatch):
    monkeypatch.setattr(file_module.time, "sleep", lambda s: None)
    storage = FileEventStorage(str(small_tmpfs), max_records_per_file=100000, max_file_count=10)
    stored = 0
    with pytest.raises(StorageFull):
        for _ in range(100):  # 100 x 5 KB is far more than 64 KB
            storage.put([Record.build("d", "t", [{"ts": 1, "values": {"seq": stored + i, "pad": "x" * 1000}}])
                         for i in range(5)], timeout=0.2)
            stored += 5
    storage.commit()
    assert stored > 10
    assert drain(storage) == list(range(stored))   # what fit is intact and in order; no half frame
    storage.close()


def test_the_index_is_written_at_each_commit_and_fsynced_at_most_once_a_second(tmp_path):
    """A killed process reads the position of the last commit; fsyncs of the index (file and
    folder) happen once per INDEX_SYNC_INTERVAL, not per commit (an SD card's fsync is slow)."""
    from thingsboard_gateway.storage.segments import read_index
    now = [0.0]
    storage = open_storage(tmp_path, max_records_per_file=1000, clock=lambda: now[0])
    storage.put(recs(30))
    storage.commit()
    for i in range(3):
        storage.ack(storage.get_batch(10, timeout=0))
        before = storage.fsyncs
        storage.commit()
        assert read_index(str(tmp_path))[1] > 0 and storage.fsyncs == before  # written, no fsync
        offsets = read_index(str(tmp_path))
        if i == 0:
            first = offsets
        now[0] += 0.3
    assert offsets > first
    assert storage.commit_wait() == pytest.approx(0.1)  # the last write is due to be made durable
    now[0] = file_module.INDEX_SYNC_INTERVAL
    before = storage.fsyncs
    storage.commit()
    assert storage.fsyncs == before + 2 and storage.commit_wait() is None
    storage.close()


def test_acks_and_reads_never_wait_for_the_index_write(tmp_path, monkeypatch):
    """The platform's acknowledgements (paho's thread) and the sender go on while the writer
    is inside a slow index write."""
    import threading
    from thingsboard_gateway.storage import segments
    storage = open_storage(tmp_path, max_records_per_file=1000)
    storage.put(recs(20))
    storage.commit()
    first = storage.get_batch(5, timeout=0)
    storage.ack(first)
    inside, release = threading.Event(), threading.Event()
    real = segments.write_index

    def slow_write_index(*args, **kwargs):
        inside.set()
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(segments, "write_index", slow_write_index)
    committer = threading.Thread(target=storage.commit)
    committer.start()
    read = []

    def sender():
        batch = storage.get_batch(5, timeout=0)
        storage.ack(batch)
        read.extend(seq_of(r) for r in batch.records)

    try:
        assert inside.wait(5)
        reader = threading.Thread(target=sender)
        reader.start()
        reader.join(3)
        assert read == [5, 6, 7, 8, 9]  # before, both waited for the storage lock the index write held
    finally:
        release.set()
        committer.join(10)
        reader.join(10)
    storage.commit()
    storage.close()
    storage = open_storage(tmp_path, max_records_per_file=1000)
    assert drain(storage) == list(range(10, 20))
    storage.close()


def test_close_makes_the_index_durable(tmp_path):
    storage = open_storage(tmp_path, max_records_per_file=1000)
    storage.put(recs(5))
    storage.commit()
    storage.ack(storage.get_batch(5, timeout=0))
    storage.commit()
    before = storage.fsyncs
    storage.close()
    assert storage.fsyncs == before + 2


def test_rotation_while_the_sender_reads_keeps_every_record_once_and_in_order(tmp_path):
    """Segments of two records: the writer rotates thousands of times while the sender
    reads (acknowledging at the end, so that the segments pile up and each step to the next
    one walks them all), with a thread switch after every few bytecodes; the segment
    bookkeeping must change under the lock the reader holds."""
    import sys
    import threading
    total = 10000
    storage = FileEventStorage(str(tmp_path), max_records_per_file=2, max_file_count=1000000)
    errors, read, batches = [], [], []
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)

    def write():
        try:
            for start in range(0, total, 5):
                storage.put(recs(5, start))
                storage.commit()
        except Exception as e:  # what the test is about: reported, not raised in a thread
            errors.append(e)

    def read_all():
        try:
            while len(read) < total and not errors:
                batch = storage.get_batch(50, timeout=0.2)
                if batch is not None:
                    read.extend(seq_of(r) for r in batch.records)
                    batches.append(batch)
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=write), threading.Thread(target=read_all)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        for batch in batches:
            storage.ack(batch)
        storage.commit()
        assert len(storage) == 0
    finally:
        sys.setswitchinterval(interval)
        storage.close()
    assert errors == []
    assert read == list(range(total))
