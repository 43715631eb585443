"""Reconnect attempts follow the backoff policy (injected clock and wait, real sockets)."""
import random
import threading

from thingsboard_gateway.config.loader import load_gateway_config
from thingsboard_gateway.runtime.backoff import BackoffPolicy
from thingsboard_gateway.platform.client import PlatformClient
from tests.support.broker import free_port
from tests.support.gateway import write_config


class FakeTime(object):
    """A clock that only moves when the client 'waits'; records each requested delay."""

    def __init__(self, attempts):
        self.now = 0.0
        self.delays = []
        self.attempts = attempts
        self.done = threading.Event()

    def clock(self):
        return self.now

    def wait(self, seconds):
        self.delays.append(seconds)
        self.now += seconds
        if len(self.delays) >= self.attempts:
            self.done.set()
            return True  # stop
        return False


def make_client(tmp_path, port, fake, jitter=0.2):
    config = load_gateway_config(write_config(str(tmp_path), port), env={})
    policy = BackoffPolicy(1.0, 60.0, 2.0, jitter, 300.0, fake.clock, random.Random(7))
    return PlatformClient(config.thingsboard, on_message=lambda t, p: None, clock=fake.clock, wait=fake.wait,
                          backoff=policy)


def test_attempt_times_follow_the_policy(tmp_path):
    fake = FakeTime(attempts=9)
    client = make_client(tmp_path, free_port(), fake)  # nothing listens there: refused at once
    client.start()
    assert fake.done.wait(30)
    client.stop()
    nominal = [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert len(fake.delays) == len(nominal)
    for delay, expected in zip(fake.delays, nominal):
        assert expected * 0.8 <= delay <= expected * 1.2, fake.delays
    assert client.attempts == 9
    assert "network error" in client.last_error


def test_default_reconnect_settings_are_the_seed_numbers(tmp_path):
    config = load_gateway_config(write_config(str(tmp_path), 1883, thingsboard={"reconnect": {}}), env={})
    client = PlatformClient(config.thingsboard, on_message=lambda t, p: None)
    policy = client.backoff
    assert (policy.min_delay, policy.max_delay, policy.multiplier, policy.jitter, policy.reset_after) == \
        (1.0, 60.0, 2, 0.2, 300.0)
