"""Property tests of file storage recovery: random truncation, byte flips, index damage."""
import json
import os
import shutil
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from thingsboard_gateway.storage import frames
from thingsboard_gateway.storage.file import FileEventStorage
from thingsboard_gateway.storage.segments import segment_numbers, segment_path
from tests.support.records import Record, drain, recs, seq_of

PER_FILE = 7


def build(folder, total, acked):
    """Write `total` records (7 per segment), ack the first `acked`; return {seq: (segment, start, end)}."""
    storage = FileEventStorage(folder, max_records_per_file=PER_FILE, max_file_count=1000)
    storage.put(recs(total))
    storage.commit()
    if acked:
        storage.ack(storage.get_batch(acked, timeout=0))
    storage.close()
    where = {}
    seq = acked
    for number in segment_numbers(folder):
        with open(segment_path(folder, number), "rb") as f:
            data = f.read()
        for offset, length in frames.scan(data).frames:
            record = Record.decode(data[offset + 8:offset + 8 + length])
            where[seq_of(record)] = (number, offset, offset + 8 + length)
            seq += 1
    return where


def read_all(folder):
    storage = FileEventStorage(folder, max_records_per_file=PER_FILE, max_file_count=1000)
    out = drain(storage)
    storage.close()
    return out


scenario = st.tuples(st.integers(1, 40), st.data())


def check_common(got, total, acked, where):
    assert got == sorted(set(got)), "order kept, nothing twice"
    assert all(0 <= s < total for s in got), "no garbage records"
    redelivered = [s for s in got if s < acked]
    assert len(redelivered) <= PER_FILE, "re-delivery bounded by one segment"


@settings(max_examples=60, deadline=None)
@given(scenario)
def test_truncation_loses_only_what_was_cut(args):
    total, data = args
    acked = data.draw(st.integers(0, total - 1))
    folder = tempfile.mkdtemp()
    try:
        where = build(folder, total, acked)
        numbers = segment_numbers(folder)
        victim = data.draw(st.sampled_from(numbers))
        path = segment_path(folder, victim)
        cut = data.draw(st.integers(0, os.path.getsize(path)))
        with open(path, "r+b") as f:
            f.truncate(cut)
        got = read_all(folder)
        check_common(got, total, acked, where)
        expected = {s for s, (n, start, end) in where.items() if s >= acked and not (n == victim and end > cut)}
        assert expected <= set(got)
    finally:
        shutil.rmtree(folder)


@settings(max_examples=60, deadline=None)
@given(scenario)
def test_byte_flip_loses_at_most_one_record(args):
    total, data = args
    acked = data.draw(st.integers(0, total - 1))
    folder = tempfile.mkdtemp()
    try:
        where = build(folder, total, acked)
        numbers = [n for n in segment_numbers(folder) if os.path.getsize(segment_path(folder, n))]
        victim = data.draw(st.sampled_from(numbers))
        path = segment_path(folder, victim)
        at = data.draw(st.integers(0, os.path.getsize(path) - 1))
        with open(path, "r+b") as f:
            f.seek(at)
            byte = f.read(1)[0]
            f.seek(at)
            f.write(bytes([byte ^ data.draw(st.integers(1, 255))]))
        got = read_all(folder)
        check_common(got, total, acked, where)
        expected = {s for s in where if s >= acked}
        assert len(expected - set(got)) <= 1
    finally:
        shutil.rmtree(folder)


@settings(max_examples=40, deadline=None)
@given(scenario, st.sampled_from(["delete", "garbage", "far offset", "unknown segment", "mid frame"]))
def test_index_damage_loses_nothing(args, damage):
    total, data = args
    acked = data.draw(st.integers(0, total - 1))
    folder = tempfile.mkdtemp()
    try:
        where = build(folder, total, acked)
        index = os.path.join(folder, "index.json")
        position = json.load(open(index))
        if damage == "delete":
            os.remove(index)
        elif damage == "garbage":
            open(index, "wb").write(os.urandom(20))
        elif damage == "far offset":
            position["read_offset"] = 10 ** 9
            json.dump(position, open(index, "w"))
        elif damage == "unknown segment":
            position["read_segment"] = max(segment_numbers(folder)) + 5
            json.dump(position, open(index, "w"))
        else:
            position["read_offset"] += 3
            json.dump(position, open(index, "w"))
        got = read_all(folder)
        assert got == sorted(set(got))
        assert {s for s in where if s >= acked} <= set(got), "index damage never loses records"
        if damage in ("delete", "garbage", "mid frame"):
            assert len([s for s in got if s < acked]) <= PER_FILE
    finally:
        shutil.rmtree(folder)
