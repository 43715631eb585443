"""Rate-limit arithmetic and the reconnect backoff policy, with an injected clock."""
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thingsboard_gateway.runtime.backoff import BackoffPolicy
from thingsboard_gateway.platform.ratelimit import RateLimit, parse_rate_limits
from tests.support.clock import Clock


@pytest.mark.parametrize("text,expected", [
    ("15:1,300:60", [(15, 1.0), (300, 60.0)]),
    (" 10:1 ", [(10, 1.0)]),
    ("0:0,", []),
    ("DEFAULT_TELEMETRY_RATE_LIMIT", [(15, 1.0), (300, 60.0)]),
    (None, [(15, 1.0), (300, 60.0)]),
])
def test_parse_rate_limits(text, expected):
    assert parse_rate_limits(text) == expected


@pytest.mark.parametrize("text", ["15-1", "a:b", "10:0", "-1:5", "1:2:3"])
def test_parse_rate_limits_rejects(text):
    with pytest.raises(ValueError):
        parse_rate_limits(text)


def test_rate_limit_all_windows_hold():
    clock = Clock(1000.0)
    limit = RateLimit(parse_rate_limits("2:1,3:10"), clock)
    assert limit.try_take() and limit.try_take()
    assert not limit.try_take()
    assert limit.time_until(1) == pytest.approx(1.05)   # the 1 s window (+5 % guard) frees its oldest
    clock.now += 1.05
    assert limit.try_take()          # third: the 10 s window is now full
    clock.now += 1.0
    assert not limit.try_take()
    assert limit.time_until(1) == pytest.approx(10.5 - 2.05)   # until the first take leaves the 10 s window


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 0.7), st.integers(1, 6)), min_size=1, max_size=60))
def test_no_window_is_ever_exceeded(steps):
    clock = Clock(1000.0)
    limit = RateLimit([(10, 1.0), (25, 5.0)], clock)
    taken = []
    for gap, n in steps:
        clock.now += gap
        wait = limit.time_until(n)
        clock.now += wait
        assert limit.try_take(n)
        taken.append((clock.now, n))
    for at, _ in taken:
        for count, seconds in ((10, 1.0), (25, 5.0)):
            assert sum(n for t, n in taken if at - seconds < t <= at) <= count


def test_debt_from_forced_takes_delays_the_next():
    clock = Clock(1000.0)
    limit = RateLimit([(2, 1.0)], clock)
    limit.take(3)
    assert limit.time_until(1) == pytest.approx(1.05)


def test_backoff_doubles_with_jitter_up_to_cap():
    policy = BackoffPolicy(1.0, 60.0, 2.0, 0.2, 300.0, Clock(1000.0), random.Random(1))
    nominal = [1, 2, 4, 8, 16, 32, 60, 60, 60]
    for expected in nominal:
        delay = policy.next_delay()
        assert expected * 0.8 <= delay <= expected * 1.2


def test_backoff_resets_only_after_a_long_connection():
    clock = Clock(1000.0)
    policy = BackoffPolicy(1.0, 60.0, 2.0, 0.0, 300.0, clock)
    assert [policy.next_delay() for _ in range(3)] == [1.0, 2.0, 4.0]
    policy.connected()
    clock.now += 299
    assert policy.next_delay() == 8.0          # short connection: keep growing
    policy.connected()
    clock.now += 300
    assert policy.next_delay() == 1.0          # lasted 5 minutes: start over


def test_backoff_survives_many_attempts():
    policy = BackoffPolicy(1.0, 60.0, 2.0, 0.0)
    for _ in range(5000):
        delay = policy.next_delay()
    assert delay == 60.0


def test_limits_set_later_count_what_was_already_sent():
    """The platform's session limits come after the first announcements: they count them."""
    from thingsboard_gateway.platform.limits import TrafficLimits
    now = [100.0]
    configured = TrafficLimits(clock=lambda: now[0])  # no configured limit
    configured.take(False, 0)
    configured.take(True, 3)
    server = TrafficLimits([(3, 1.0)], [(5, 1.0)], [(10, 1.0)], clock=lambda: now[0]).carry(configured)
    assert server.wait_time(False, 0) == 0.0
    server.take(False, 0)
    assert server.wait_time(False, 0) > 0  # 2 carried + 1: the window of 3 is full
    now[0] += 1.1
    assert server.wait_time(True, 10) == 0.0
