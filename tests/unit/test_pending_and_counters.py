"""runtime.pending: the one table of requests waiting for an answer (MQTT RPCs, REST)."""
from thingsboard_gateway.runtime.pending import Pending


def test_oldest_first_removal_expiry_and_the_next_wait():
    pending = Pending()
    first, second, other = object(), object(), object()
    pending.add("k", first, 10.0)
    pending.add("k", second, 20.0)
    pending.add("o", other, 5.0)
    assert pending.wait(0.0, 60.0) == 5.0
    assert pending.wait(4.999, 60.0) == 0.01  # never a busy zero
    assert pending.wait(0.0, 1.0) == 1.0
    assert pending.take("k") is first
    assert pending.remove("k", first) is False  # answered already
    assert pending.expire(6.0) == [("o", other)]
    assert pending.remove("k", second) is True
    assert pending.take("k") is None and pending.wait(0.0, 0.5) == 0.5


def test_drain_hands_back_everything_once():
    pending = Pending()
    items = [object() for _ in range(3)]
    for i, item in enumerate(items):
        pending.add(("device", i % 2), item, 100.0)
    assert sorted(map(id, pending.drain())) == sorted(map(id, items))
    assert pending.drain() == [] and pending.expire(1000.0) == []


def test_counters_lose_no_count_across_threads():
    """runtime.counters: counts of one (lock-free tickers) and larger additions, from
    four threads at once, add up exactly."""
    import threading
    from thingsboard_gateway.runtime.counters import Counters
    counters = Counters("zero")
    tick = counters.ticker("messages")

    def work():
        for _ in range(20000):
            tick()
            counters.add("frames")
            counters.add("bytes", 3)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counters.snapshot() == {"zero": 0, "messages": 80000, "frames": 80000, "bytes": 240000}
    assert counters["messages"] == 80000
