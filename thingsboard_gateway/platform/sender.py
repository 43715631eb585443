"""The sender thread: storage -> Gateway API messages -> platform, acked per batch.

Batches read from storage are packed into messages (grouped per device, split to fit
`max_payload` and the datapoint limit), published at QoS 1 within the rate limits and
the in-flight window, and acked to storage only when the platform acknowledged every
message that carried them. Reads go ahead of acks. Delivery waits, after each connect,
for the platform's session limits (or their timeout). A publish not acknowledged within
`ack_timeout` makes the client reconnect, and paho re-sends everything unacknowledged
(with DUP) before new data. That timeout holds wherever the thread waits (the in-flight
window, the rate limits, the session limits' wait): every wait is at most 0.5 s and is
followed by the check, so a platform that stops acknowledging while the connection stays
up (a middlebox swallowing bytes) costs one timeout, not the session. Each session starts
the clock of what is in flight again (`connected()`).
"""
import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from thingsboard_gateway.platform import limits as traffic
from thingsboard_gateway.platform.limits import TrafficLimits
from thingsboard_gateway.platform.names import DeviceNames
from thingsboard_gateway.platform.packing import pack
from thingsboard_gateway.platform.topics import TELEMETRY
from thingsboard_gateway.runtime.liveness import Heart
from thingsboard_gateway.storage.base import Batch, EventStorage

log = logging.getLogger(__name__)


class _Delivery(object):
    """Counts the PUBACKs of the messages carrying some batches; done(batches, n) after
    the last."""

    def __init__(self, batches, messages, done):
        # type: (List[Batch], int, Callable[[List[Batch], int], None]) -> None
        self.batches = batches
        self.messages = messages
        self._remaining = messages
        self._done = done
        self._lock = threading.Lock()

    def acked(self):
        with self._lock:
            self._remaining -= 1
            finished = self._remaining == 0
        if finished:
            self._done(self.batches, self.messages)


def sender_for(storage, client, stats, thingsboard, storage_config, tracker=None):
    # type: (EventStorage, Any, Any, Dict[str, Any], Dict[str, Any], Any) -> Sender
    """The Sender a `thingsboard` and a `storage` section ask for."""
    tb = thingsboard
    read_count = storage_config.get("read_records_count", 100)
    if storage_config.get("type") != "memory":
        read_count = storage_config.get("max_read_records_count", read_count)
    return Sender(storage, client, stats, max_read=read_count, max_payload=tb["maxPayloadSizeBytes"],
                  limits=TrafficLimits.combine(traffic.configured(tb, "devices")),
                  min_pack_delay=tb["minPackSendDelayMS"] / 1000.0, min_pack_size=tb["minPackSizeToSend"],
                  max_inflight=tb["maxInflightMessages"], ack_timeout=tb["publishAckTimeoutMs"] / 1000.0,
                  tracker=tracker)


class Sender(object):
    """Owns the `sender` thread.

    client: wait_connected(timeout), publish(topic, payload, on_ack=...), reconnect().
    stats: add(name, n). tracker: delivered(token, n) / failed(token, reason), or None.
    """

    def __init__(self, storage, client, stats, max_read=100, max_payload=55000, limits=None,
                 min_pack_delay=0.05, min_pack_size=500, max_inflight=100, ack_timeout=30.0, tracker=None,
                 clock=time.monotonic):
        # type: (EventStorage, Any, Any, int, int, Optional[TrafficLimits], float, int, int, float, Any, Callable[[], float]) -> None
        self._storage = storage
        self._client = client
        self._stats = stats
        self._max_read = max_read
        self._max_payload = max_payload
        self._limits = limits or TrafficLimits()
        self._min_pack_delay = min_pack_delay
        self._min_pack_size = min_pack_size
        self._max_inflight = max_inflight
        self._ack_timeout = ack_timeout
        self._tracker = tracker
        self._clock = clock
        self._stop = threading.Event()
        self._thread = None  # type: Optional[threading.Thread]
        self._cond = threading.Condition()
        self._outstanding = {}  # type: Dict[int, float]  publish number -> sent at
        self._published = 0
        self._ready = threading.Event()  # session limits known (or their wait timed out)
        self._limits_deadline = None  # type: Optional[float]
        self._limits_wait_shortened = False
        self.max_inflight_seen = 0
        self.names = DeviceNames()  # renamed devices (the service shares its own)
        self.heart = Heart("sender")  # beaten every round and every bounded wait (gateway/liveness.py)

    def consume(self, telemetry, datapoints):
        # type: (bool, int) -> None
        """Count a message published outside the sender (a reply, an announcement)."""
        with self._cond:
            self._limits.take(telemetry, datapoints)

    # -- configuration from the platform ------------------------------------------------
    def set_limits(self, limits, max_payload=None, max_inflight=None):
        # type: (TrafficLimits, Optional[int], Optional[int]) -> None
        """New limits (e.g. the platform's session limits); callable from any thread."""
        with self._cond:
            self._limits = limits.carry(self._limits)
            if max_payload:
                self._max_payload = max_payload
            if max_inflight:
                self._max_inflight = max(1, max_inflight)
            self._cond.notify_all()
        self._ready.set()

    def wait_for_limits(self, timeout):
        # type: (float) -> None
        """After a (re)connect: hold delivery until set_limits or release_limits, or
        at most `timeout` s, then go on with the limits we have."""
        self._limits_deadline = self._clock() + timeout
        self._limits_wait_shortened = False
        self._ready.clear()

    def shorten_limits_wait(self, seconds):
        # type: (float) -> None
        """Wait at most `seconds` more for the session limits."""
        deadline = self._clock() + seconds
        if self._limits_deadline is None or deadline < self._limits_deadline:
            self._limits_deadline = deadline
            self._limits_wait_shortened = True

    def release_limits(self):
        """Go on with the limits we have (the session limits did not come in time)."""
        self._ready.set()

    # -- life cycle ---------------------------------------------------------------------
    def start(self):
        self._ready.set()  # until a connect asks to wait for session limits
        self._thread = threading.Thread(target=self._run, name="sender")
        self._thread.start()

    def stop(self, timeout=5.0):
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_idle(self, timeout):
        # type: (float) -> bool
        """Wait until storage is empty and nothing is in flight (used on shutdown)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._outstanding or len(self._storage):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.2))
        return True

    def _run(self):
        self.heart.attach()
        while not self._stop.is_set():
            self.heart.beat()
            self._check_ack_timeout()
            if not self._client.wait_connected(0.5):
                continue
            if not self._ready.is_set() and not self._limits_known():
                continue
            batches = self._read_batches()
            if batches:
                self._send(batches)
        self.heart.stopped()

    def _limits_known(self):
        # type: () -> bool
        """Wait (at most 0.5 s) for the session limits; True once they are known or their
        wait ran out."""
        deadline = self._limits_deadline or 0.0
        if self._ready.wait(max(0.0, min(0.5, deadline - self._clock()))):
            return True
        if self._clock() < deadline:
            return False
        if self._limits_wait_shortened:
            log.info("The platform is a plain MQTT broker (no session limits); using the configured limits")
        else:
            log.warning("No answer to getSessionLimits in time; delivering with the configured limits")
        self._ready.set()
        return True

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

    # -- sending ------------------------------------------------------------------------
    def _send(self, batches):
        # type: (List[Batch]) -> None
        # Packed only once the session is up and its limits known: a batch read as the
        # connection dropped goes out on the next session's limits and device names.
        while not (self._client.wait_connected(0.5) and (self._ready.is_set() or self._limits_known())):
            self.heart.beat()
            if self._stop.is_set():
                return  # stopping: unacked batches stay in storage
        records = [r for b in batches for r in b.records]
        packed = pack(records, self._max_payload, self._limits.max_datapoints, self.names.keys)
        for device, reason in packed.rejected:
            log.error("Rejected data of %s: %s", device, reason)
            self._stats.add("values_rejected", 1)
        if not packed.messages:
            self._delivered(batches, 0)
            return
        delivery = _Delivery(batches, len(packed.messages), self._delivered)
        for message in packed.messages:
            number = self._wait_for_room(message.topic == TELEMETRY, message.datapoints)
            if number is None:
                return  # stopping: unacked batches stay in storage
            self._client.publish(message.topic, message.payload,
                                 on_ack=lambda mid, n=number: self._acked(n, delivery))
            self._stats.add("platform_messages_published", 1)
            if message.topic != TELEMETRY:
                self._stats.add("platform_attribute_messages_published", 1)

    def _wait_for_room(self, telemetry, datapoints):
        # type: (bool, int) -> Optional[int]
        """Block until the in-flight window and the rate limits allow one more message;
        returns its number (None when stopping). Waits exactly until tokens are due, and
        never past the ack timeout of what is in flight."""
        while not self._stop.is_set():
            with self._cond:
                if len(self._outstanding) >= self._max_inflight:
                    wait = self._ack_timeout_wait()
                else:
                    wait = self._limits.wait_time(telemetry, datapoints)
                    if wait <= 0:
                        self._limits.take(telemetry, datapoints)
                        self._published += 1
                        self._outstanding[self._published] = self._clock()
                        if len(self._outstanding) > self.max_inflight_seen:
                            self.max_inflight_seen = len(self._outstanding)
                        return self._published
                    wait = min(wait, self._ack_timeout_wait())
                self._cond.wait(wait)
            self.heart.beat()
            self._check_ack_timeout()  # the platform stopped acknowledging: reconnect, then go on
        return None

    def _ack_timeout_wait(self):
        # type: () -> float
        """Seconds (0.01 to 0.5) until the oldest message in flight is overdue."""
        if not self._outstanding:
            return 0.5
        oldest = min(self._outstanding.values())
        return max(0.01, min(0.5, oldest + self._ack_timeout - self._clock()))

    def _overdue_locked(self):
        # type: () -> Optional[float]
        """The age of the oldest message in flight when it is past the ack timeout and the
        client is connected (else None); its clock and the others' restart, so that one
        timeout makes one reconnect. Holds self._cond."""
        if not self._outstanding or not self._client.is_connected():
            return None
        now = self._clock()
        age = now - min(self._outstanding.values())
        if age < self._ack_timeout:
            return None
        for number in self._outstanding:
            self._outstanding[number] = now
        return age

    def _check_ack_timeout(self):
        """Reconnect when what is in flight is overdue (outside the lock: paho takes its own)."""
        with self._cond:
            overdue = self._overdue_locked()
        if overdue is not None:
            self._reconnect_for_acks(overdue)

    def _reconnect_for_acks(self, age):
        # type: (float) -> None
        log.warning("No PUBACK from the platform for %.0f s (%d messages in flight): reconnecting so that "
                    "unacknowledged messages are sent again", age, len(self._outstanding))
        self._stats.add("platform_ack_timeouts", 1)
        self._client.reconnect()

    def connected(self):
        """A new platform session (paho's thread): what is in flight is sent again now, so
        its ack timeout counts from here."""
        with self._cond:
            now = self._clock()
            for number in self._outstanding:
                self._outstanding[number] = now

    def _acked(self, number, delivery):
        # type: (int, _Delivery) -> None
        """paho's thread: one message acknowledged."""
        with self._cond:
            self._outstanding.pop(number, None)
            self._cond.notify_all()
        delivery.acked()

    def _delivered(self, batches, messages):
        # type: (List[Batch], int) -> None
        """paho's thread: every message of `batches` was acknowledged."""
        for batch in batches:
            self._storage.ack(batch)
            self._stats.add("messages_sent", len(batch))
            if self._tracker is not None:
                for record in batch.records:
                    if record.token:
                        self._tracker.delivered(record.token, messages)
        with self._cond:
            self._cond.notify_all()
