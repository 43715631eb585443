"""Work asked for by many callbacks in a row, done once after them (runtime/together.py),
as the storage writer runs a committed group's callbacks: the MQTT connector's PUBACKs of
a group leave together, after every record of the group is durable."""
import threading

from thingsboard_gateway.connectors.mqtt.acks import AckSequencer
from thingsboard_gateway.runtime.together import after, together
from thingsboard_gateway.storage.memory import MemoryEventStorage
from thingsboard_gateway.storage.writer import StorageWriter
from tests.support.records import recs
from tests.support.waiting import wait_until


def test_work_asked_for_in_a_block_runs_once_at_its_end():
    runs = []
    flush = lambda: runs.append(len(seen))  # noqa: E731
    seen = []
    with together():
        for i in range(5):
            seen.append(i)
            after(flush)
        assert runs == []
        with together():  # nested: the outermost block's end
            after(flush)
        assert runs == []
    assert runs == [5]


def test_outside_a_block_it_runs_at_once():
    runs = []
    after(lambda: runs.append(1))
    assert runs == [1]


def test_a_failing_flush_does_not_keep_the_others_from_running():
    runs = []

    def broken():
        raise RuntimeError("boom")
    with together():
        after(broken)
        after(lambda: runs.append(1))
    assert runs == [1]


def test_other_threads_are_not_held_by_a_block():
    runs = []
    with together():
        thread = threading.Thread(target=lambda: after(lambda: runs.append("other")))
        thread.start()
        thread.join()
        assert runs == ["other"]


def test_a_stored_groups_pubacks_leave_as_one_call_in_arrival_order():
    sent = []
    acks = AckSequencer(lambda batch: sent.append([mid for mid, _ in batch]))
    storage = MemoryEventStorage(max_records=1000)
    writer = StorageWriter(storage, linger=0.2)  # the records below come within one linger
    writer.start()
    try:
        seqs = [acks.received() for _ in range(50)]
        for i, seq in enumerate(seqs):
            writer.submit(recs(1)[0], 1.0, on_commit=lambda ok, seq=seq, i=i: acks.done(seq, 100 + i, 1))
        wait_until(lambda: sum(len(b) for b in sent) == 50, 5, "50 PUBACKs")
    finally:
        writer.stop()
    assert [mid for batch in sent for mid in batch] == list(range(100, 150))
    assert len(sent) < 5  # not one call per message
