"""Exponential backoff with jitter for reconnects."""
import time
from typing import Any, Callable, Optional


class BackoffPolicy(object):
    """Delays min_delay * multiplier**k, capped at max_delay, each randomised by +-jitter.

    `next_delay()` is called after every failed or ended connection; `connected()` when a
    connection is established; the sequence restarts only if that connection lasted at
    least `reset_after` seconds. Seconds throughout; the clock is injected.
    """

    def __init__(self, min_delay=1.0, max_delay=60.0, multiplier=2.0, jitter=0.2, reset_after=300.0,
                 clock=time.monotonic, rng=None):
        # type: (float, float, float, float, float, Callable[[], float], Any) -> None
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.multiplier = multiplier
        self.jitter = jitter
        self.reset_after = reset_after
        self._clock = clock
        self._rng = rng  # random.Random(), made at the first delay (random costs 2 ms to import on 3.7)
        self._attempt = 0
        self._connected_at = None  # type: Optional[float]

    def connected(self):
        """A connection was established now."""
        self._connected_at = self._clock()

    def nominal_delay(self, attempt):
        # type: (int) -> float
        """The delay before jitter for the attempt-th retry (0-based)."""
        return min(self.max_delay, self.min_delay * (self.multiplier ** attempt))

    def next_delay(self):
        # type: () -> float
        """Seconds to wait before the next attempt."""
        if self._connected_at is not None:
            lasted = self._clock() - self._connected_at
            self._connected_at = None
            if lasted >= self.reset_after:
                self._attempt = 0
        base = self.nominal_delay(self._attempt)
        self._attempt = min(self._attempt + 1, 64)  # beyond that the cap rules anyway
        spread = base * self.jitter
        if self._rng is None:
            import random
            self._rng = random.Random()
        return max(0.0, base + self._rng.uniform(-spread, spread))


class AttemptsBackoff(object):
    """Upstream's attempt keys (Modbus connectAttemptCount / waitAfterFailedAttemptsMs,
    BLE connectRetry / waitAfterConnectRetries): `attempts` tries `retry_delay` apart,
    then a pause of `wait`, then again. A connection resets the count."""

    def __init__(self, attempts, retry_delay, wait):
        # type: (int, float, float) -> None
        self.attempts = max(1, attempts)
        self.retry_delay = retry_delay
        self.wait = wait
        self._failed = 0

    def connected(self):
        self._failed = 0

    def next_delay(self):
        # type: () -> float
        self._failed += 1
        if self._failed >= self.attempts:
            self._failed = 0
            return self.wait
        return self.retry_delay
