"""The sender thread: storage -> Gateway API messages -> platform, acked per batch.

A batch read from storage is packed into messages, published at QoS 1 within the
message rate limit, and acked to storage only when the platform acknowledged every
message that carried it. Reads go ahead of acks, bounded by `window` batches in flight.
"""
import logging
import threading
import time
from typing import Any, Callable, List, Optional

from thingsboard_gateway.platform.packing import pack
from thingsboard_gateway.platform.ratelimit import RateLimit
from thingsboard_gateway.storage.base import Batch, EventStorage

log = logging.getLogger(__name__)


class _BatchDelivery(object):
    """Counts the PUBACKs of the messages carrying some batches; calls done(batches) after
    the last."""

    def __init__(self, batches, messages, done):
        # type: (List[Batch], int, Callable[[List[Batch]], None]) -> None
        self.batches = batches
        self._remaining = messages
        self._done = done
        self._lock = threading.Lock()

    def acked(self, mid):
        with self._lock:
            self._remaining -= 1
            finished = self._remaining == 0
        if finished:
            self._done(self.batches)


class Sender(object):
    """Owns the `sender` thread. `client` needs wait_connected() and publish(topic, payload,
    on_ack=...); `stats` needs add(name, n)."""

    def __init__(self, storage, client, stats, max_read=100, max_payload=55000, rate_limit=None,
                 min_pack_delay=0.05, min_pack_size=500, window=8):
        # type: (EventStorage, Any, Any, int, int, Optional[RateLimit], float, int, int) -> None
        self._storage = storage
        self._client = client
        self._stats = stats
        self._max_read = max_read
        self._max_payload = max_payload
        self._rate_limit = rate_limit or RateLimit([])
        self._min_pack_delay = min_pack_delay
        self._min_pack_size = min_pack_size
        self._window = threading.BoundedSemaphore(window)
        self._stop = threading.Event()
        self._thread = None  # type: Optional[threading.Thread]
        self._in_flight = 0
        self._idle = threading.Condition()

    def start(self):
        self._thread = threading.Thread(target=self._run, name="sender")
        self._thread.start()

    def stop(self, timeout=5.0):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_idle(self, timeout):
        # type: (float) -> bool
        """Wait until storage is empty and nothing is in flight (used on shutdown)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._in_flight or len(self._storage):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(min(remaining, 0.2))
        return True

    def _run(self):
        while not self._stop.is_set():
            if not self._client.wait_connected(0.5):
                continue
            if not self._window.acquire(timeout=0.5):
                continue
            batches = self._read_batches()
            if not batches:
                self._window.release()
                continue
            self._send(batches)

    def _read_batches(self):
        # type: () -> List[Batch]
        batch = self._storage.get_batch(self._max_read, timeout=0.5)
        if batch is None:
            return []
        if len(batch) >= min(self._max_read, self._min_pack_size) or not self._min_pack_delay:
            return [batch]
        # Few records: give producers min_pack_delay to fill the pack (latency for batching).
        # Batches stay separate: storage acknowledges exactly what it handed out.
        self._stop.wait(self._min_pack_delay)
        more = self._storage.get_batch(self._max_read - len(batch), timeout=0)
        return [batch] if more is None else [batch, more]

    def _send(self, batches):
        # type: (List[Batch]) -> None
        records = [r for b in batches for r in b.records] if len(batches) > 1 else batches[0].records
        messages = pack(records, self._max_payload)
        with self._idle:
            self._in_flight += 1
        if not messages:
            self._delivered(batches)
            return
        delivery = _BatchDelivery(batches, len(messages), self._delivered)
        for topic, payload in messages:
            self._take_rate_token()
            self._client.publish(topic, payload, on_ack=delivery.acked)
            self._stats.add("platform_messages_published", 1)

    def _take_rate_token(self):
        while not self._rate_limit.try_take(1):
            # Wait exactly until the token is due; storage absorbs the backlog meanwhile.
            if self._stop.wait(self._rate_limit.time_until(1)):
                return

    def _delivered(self, batches):
        # type: (List[Batch]) -> None
        """Runs on paho's thread once every message of `batches` was acknowledged."""
        for batch in batches:
            self._storage.ack(batch)
            self._stats.add("messages_sent", len(batch))
        self._window.release()
        with self._idle:
            self._in_flight = max(0, self._in_flight - 1)
            self._idle.notify_all()
