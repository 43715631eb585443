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
        self.lock = threading.Lock()

    def wait_connected(self, timeout):
        return True

    def reconnect(self):
        pass

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
