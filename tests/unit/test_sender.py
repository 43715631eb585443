"""The sender acknowledges to storage exactly the batches it read, once the platform
acknowledged every message that carried them (a client double acks on publish)."""
import re
import threading
import time

import pytest

from thingsboard_gateway.gateway.statistics import Statistics
from thingsboard_gateway.platform.limits import TrafficLimits
from thingsboard_gateway.platform.sender import Sender
from thingsboard_gateway.storage.file import FileEventStorage
from thingsboard_gateway.storage.memory import MemoryEventStorage
from thingsboard_gateway.storage.sqlite import SqliteEventStorage
from tests.support.records import recs
from tests.support.waiting import wait_until


class AckingClient(object):
    """Acknowledges every publish at once, or holds them while `hold` is set."""

    def __init__(self):
        self.published = []
        self.hold = False
        self.held = []
        self.reconnects = 0
        self.lock = threading.Lock()

    def wait_connected(self, timeout):
        return True

    def is_connected(self):
        return True

    def reconnect(self):
        self.reconnects += 1

    def publish(self, topic, payload, on_ack=None):
        with self.lock:
            self.published.append((topic, payload))
            mid = len(self.published)
            if self.hold:
                self.held.append((on_ack, mid))
                return mid
        on_ack(mid)
        return mid

    def release(self):
        with self.lock:
            held, self.held = self.held, []
        for on_ack, mid in held:
            on_ack(mid)


@pytest.mark.parametrize("kind", ["memory", "file", "sqlite"])
def test_every_record_is_acked_even_when_small_reads_are_packed_together(tmp_path, kind):
    if kind == "memory":
        storage = MemoryEventStorage(1000)
    elif kind == "file":
        storage = FileEventStorage(str(tmp_path / "f"))
    else:
        storage = SqliteEventStorage(str(tmp_path / "s.db"))
    client = AckingClient()
    sender = Sender(storage, client, Statistics(), max_read=50, min_pack_delay=0.05, min_pack_size=500)
    sender.start()
    try:
        for i in range(20):  # trickles: each read finds a few records, then more after the pack delay
            storage.put(recs(3, i * 3))
            storage.commit()
            time.sleep(0.01)
        wait_until(lambda: len(storage) == 0)
        body = "".join(payload if isinstance(payload, str) else payload.decode() for _, payload in client.published)
        assert sorted(set(int(n) for n in re.findall(r'"seq":\s*(\d+)', body))) == list(range(60)), body[:300]
    finally:
        sender.stop()
        storage.close()


def test_records_stay_until_the_platform_acknowledged_them():
    storage = MemoryEventStorage(1000)
    client = AckingClient()
    client.hold = True
    sender = Sender(storage, client, Statistics(), max_read=10, min_pack_delay=0)
    sender.start()
    try:
        storage.put(recs(25))
        wait_until(lambda: len(client.published) >= 3)
        assert len(storage) == 25
        client.release()
        wait_until(lambda: len(storage) == 0)
    finally:
        sender.stop()


def test_rate_limit_spaces_messages():
    storage = MemoryEventStorage(1000)
    client = AckingClient()
    sender = Sender(storage, client, Statistics(), max_read=1, min_pack_delay=0, limits=TrafficLimits([(2, 1.0)]))
    sender.start()
    try:
        storage.put(recs(4))
        wait_until(lambda: len(client.published) >= 2)
        time.sleep(0.3)
        assert len(client.published) == 2       # the bucket of 2 per second is empty
        wait_until(lambda: len(client.published) == 4, timeout=5)
    finally:
        sender.stop()


@pytest.fixture
def unacknowledged():
    """unacknowledged(**sender_kwargs) -> (storage, client, stats, sender): a started
    sender reading one record at a time from memory storage, its client holding every
    PUBACK back (a platform that stopped acknowledging); stopped at teardown."""
    senders = []

    def start(**kwargs):
        storage, client, stats = MemoryEventStorage(1000), AckingClient(), Statistics()
        client.hold = True
        sender = Sender(storage, client, stats, max_read=1, min_pack_delay=0, **kwargs)
        sender.start()
        senders.append(sender)
        return storage, client, stats, sender

    yield start
    for sender in senders:
        sender.stop()


def test_a_full_window_without_acks_reconnects_after_the_ack_timeout_and_resumes(unacknowledged):
    """The in-flight window full of publishes the platform never acknowledged: the wait
    for room must not outlast the ack timeout (it once waited until a restart)."""
    storage, client, stats, sender = unacknowledged(max_inflight=3, ack_timeout=0.3)
    storage.put(recs(10))
    wait_until(lambda: len(client.published) == 3)         # the window is full
    wait_until(lambda: client.reconnects >= 1, timeout=5, what="a reconnect after the ack timeout")
    assert stats.get("platform_ack_timeouts") >= 1
    assert sender.heart.silent_for(time.monotonic()) < 1.0  # it went round while it waited
    client.hold = False
    client.release()                                       # the new session acknowledges
    sender.connected()
    wait_until(lambda: len(storage) == 0, timeout=5)


def test_a_rate_limit_wait_does_not_outlast_the_ack_timeout(unacknowledged):
    storage, client, _, _ = unacknowledged(ack_timeout=0.3, limits=TrafficLimits([(1, 30.0)]))  # 1 per 30 s
    storage.put(recs(3))
    wait_until(lambda: len(client.published) == 1)
    wait_until(lambda: client.reconnects >= 1, timeout=5, what="a reconnect while waiting for tokens")


def test_one_timeout_makes_one_reconnect_and_a_new_session_restarts_the_clock(unacknowledged):
    storage, client, _, sender = unacknowledged(max_inflight=1, ack_timeout=0.4)
    storage.put(recs(2))
    wait_until(lambda: client.reconnects >= 1, timeout=5)
    sender.connected()
    time.sleep(0.25)
    assert client.reconnects == 1
