"""Delivery control against a limit-enforcing platform double (tests/support/fake_platform.py):
rate limits and session limits, splitting, the in-flight window, re-sending after a
withheld PUBACK, delivery futures. The gateway runs in-process so futures can be held."""
import concurrent.futures
import threading
import time

import pytest

from thingsboard_gateway.config.loader import load_gateway_config
from thingsboard_gateway.gateway.service import GatewayService
from tests.support.fake_platform import FakePlatform, datapoints
from tests.support.gateway import write_config


def session(messages="1000:1", datapoints_limit="100000:1", max_payload=65536, inflight=100):
    limits = {"messages": messages, "telemetryMessages": messages, "telemetryDataPoints": datapoints_limit}
    return {"maxPayloadSize": max_payload, "maxInflightMessages": inflight, "rateLimits": dict(limits),
            "gatewayRateLimits": dict(limits)}


@pytest.fixture
def started(tmp_path):
    """start(fake, thingsboard=...) -> a running in-process GatewayService; stopped at teardown."""
    services, fakes = [], []

    def start(fake, **thingsboard):
        fakes.append(fake)
        thingsboard.setdefault("statistics", {"enable": False})
        path = write_config(str(tmp_path), fake.port, thingsboard=thingsboard)
        service = GatewayService(load_gateway_config(path, env={}))
        service.start()
        services.append(service)
        return service

    yield start
    for service in services:
        service.shutdown()
    for fake in fakes:
        fake.close()


def send(service, count, device="Dev", values=lambda i: {"seq": i}):
    return [service.ingest.send_to_storage("test", "test", {"deviceName": device, "telemetry": [{"ts": 1000 + i,
                                                                                            "values": values(i)}]})
            for i in range(count)]


def window_peak(items, seconds):
    times = sorted(p.at for p in items)
    best, lo = 0, 0
    for hi in range(len(times)):
        while times[hi] - times[lo] >= seconds:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_two_thousand_records_within_tight_limits_arrive_without_violations(started):
    limits = {"messages": "10:1,100:10", "datapoints": "300:1,3000:10"}
    fake = FakePlatform(limits=limits, session_limits=session("10:1,100:10", "300:1,3000:10"))
    service = started(fake)
    futures = send(service, 2000)
    done, pending = concurrent.futures.wait(futures, timeout=60)
    assert not pending
    assert all(f.result() for f in futures)
    assert fake.violations == []
    assert fake.connections == 1
    assert {k[1] for k in fake.telemetry()} == {"seq"}
    received = [p.body["Dev"] for p in fake.published if p.topic == "v1/gateway/telemetry"]
    seqs = [e["values"]["seq"] for body in received for e in body]
    assert seqs == list(range(2000))                 # complete and in order
    assert max(datapoints(p) for p in fake.published) <= 240   # 80 % of the server's 300


def test_stricter_server_limits_win_over_config(started):
    fake = FakePlatform(limits={"messages": "5:1"}, session_limits=session("5:1"))
    service = started(fake, deviceMessagesRateLimits="1000:1", maxPayloadSizeBytes=300)
    futures = send(service, 100)
    done, pending = concurrent.futures.wait(futures, timeout=60)
    assert not pending
    gateway = [p for p in fake.published if p.topic.startswith("v1/gateway/")]
    assert fake.violations == []
    assert len(gateway) > 8                              # small payloads: many messages
    assert window_peak(gateway, 1.0) <= 5                # the server's 5, not the configured 1000


def test_no_answer_to_session_limits_still_delivers_after_the_timeout(started):
    fake = FakePlatform(session_limits=None)
    started_at = time.monotonic()
    service = started(fake, sessionLimitsTimeoutMs=1500)
    future = send(service, 1)[0]
    future.result(timeout=15)
    first = min(p.at for p in fake.published if p.topic == "v1/gateway/telemetry")
    assert 1.0 <= first - started_at < 8


def test_a_200_kb_record_is_split_and_every_part_fits(started):
    fake = FakePlatform(limits={"max_payload": 65536}, session_limits=session(max_payload=65536))
    service = started(fake)
    values = {"k%03d" % i: "v" * 1000 for i in range(200)}
    future = service.ingest.send_to_storage("t", "t", {"deviceName": "Big", "telemetry": [{"ts": 5, "values": values}]})
    future.result(timeout=30)
    parts = [p for p in fake.published if p.topic == "v1/gateway/telemetry"]
    assert len(parts) >= 4 and fake.violations == []
    assert all(len(p.payload) <= 65536 * 0.8 for p in parts)
    assert {k: v for (d, k), v in fake.telemetry().items()} == values
    assert all(e["ts"] == 5 for p in parts for e in p.body["Big"])


def test_datapoint_limit_splits_messages(started):
    fake = FakePlatform(limits={"datapoints": "50:1"}, session_limits=session(datapoints_limit="50:1"))
    service = started(fake)
    values = {"k%d" % i: i for i in range(100)}
    service.ingest.send_to_storage("t", "t", {"deviceName": "Wide", "telemetry": [{"ts": 1, "values": values}]}) \
        .result(timeout=30)
    assert fake.violations == []
    assert max(datapoints(p) for p in fake.published) <= 40
    assert {k: v for (d, k), v in fake.telemetry().items()} == values


def test_withheld_puback_makes_the_gateway_send_again(started):
    held = []

    def withhold_first(published):
        if published.topic == "v1/gateway/telemetry" and not held:
            held.append(published)
            return True
        return False

    fake = FakePlatform(session_limits=session(), withhold=withhold_first)
    service = started(fake, publishAckTimeoutMs=1000)
    future = send(service, 1)[0]
    future.result(timeout=20)
    copies = [p for p in fake.published if p.topic == "v1/gateway/telemetry"]
    assert len(copies) >= 2 and copies[-1].dup and copies[-1].payload == copies[0].payload
    assert fake.connections >= 2


def test_in_flight_window_is_never_exceeded_and_futures_wait_for_every_ack(started):
    hold = threading.Event()
    hold.set()
    fake = FakePlatform(session_limits=session(inflight=5), withhold=lambda p: hold.is_set()
                        and p.topic == "v1/gateway/telemetry")
    service = started(fake, maxPayloadSizeBytes=300)
    futures = send(service, 40)
    fake.wait_for(lambda: len([p for p in fake.published if p.topic == "v1/gateway/telemetry"]) >= 4)
    time.sleep(1.0)
    in_flight = [p for p in fake.published if p.topic == "v1/gateway/telemetry"]
    assert len(in_flight) == 4                       # 80 % of 5: the gateway waits for PUBACKs
    assert not any(f.done() for f in futures)        # nothing acknowledged, nothing resolved
    hold.clear()
    fake.release()
    done, pending = concurrent.futures.wait(futures, timeout=30)
    assert not pending and fake.max_unacked <= 4


def test_rejected_values_are_counted_in_statistics(started):
    fake = FakePlatform(session_limits=session(max_payload=1000))
    service = started(fake)
    service.ingest.send_to_storage("t", "t", {"deviceName": "Odd", "telemetry": [{"ts": 1, "values": {
        "ok": 1, "huge": "x" * 5000}}]}).result(timeout=20)
    assert service.statistics()["values_rejected"] == 1
    assert fake.telemetry() == {("Odd", "ok"): 1}


def test_data_sent_without_a_delivery_future_is_delivered_and_not_tracked(started):
    """delivery=False (built-in connectors, which ignore the Future): None comes back,
    nothing waits in the tracker, and the data arrives all the same; on_stored still runs."""
    fake = FakePlatform(session_limits=session())
    service = started(fake)
    stored = []
    results = [service.ingest.send_to_storage("t", "t", {"deviceName": "Quiet", "telemetry": [{"ts": 10 + i, "values": {
        "seq": i}}]}, on_stored=stored.append, delivery=False) for i in range(20)]
    assert results == [None] * 20 and len(service.tracker) == 0
    tracked = service.ingest.send_to_storage("t", "t", {"deviceName": "Quiet", "telemetry": [{"ts": 99, "values": {
        "seq": 99}}]})
    assert tracked.result(timeout=20).messages >= 1
    seqs = sorted(entry["values"]["seq"] for p in list(fake.published) if p.topic == "v1/gateway/telemetry"
                  for entry in p.body.get("Quiet", []))
    assert seqs == list(range(20)) + [99]  # the untracked records went before the tracked one was acked
    assert stored == [True] * 20
