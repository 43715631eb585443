"""Rate limits in the upstream notation (`"15:1,300:60"`) as sliding windows.

Pure arithmetic with an injected clock: `RateLimit.time_until(n)` tells how long to wait
before `n` may go, `try_take(n)` takes them when they may. Not thread-safe: the owner
serializes calls.
"""
import collections
import time
from typing import Callable, List, Optional, Tuple

from thingsboard_gateway.config.ratelimits import DEFAULT_RATE_LIMITS, parse_rate_limits  # noqa: F401

JITTER_GUARD = 1.05


class _Window(object):
    """At most `count` in any `seconds`: the amounts taken within the window, oldest first."""

    __slots__ = ("count", "seconds", "entries", "used")

    def __init__(self, count, seconds):
        self.count = count
        # A little longer than the platform's window: messages sent exactly one window
        # apart can arrive closer together (network jitter).
        self.seconds = seconds * JITTER_GUARD
        self.entries = collections.deque()  # type: collections.deque
        self.used = 0.0

    def prune(self, now):
        while self.entries and now - self.entries[0][0] >= self.seconds:
            self.used -= self.entries.popleft()[1]

    def time_until(self, n, now):
        need = min(float(n), self.count)
        if self.used + need <= self.count:
            return 0.0
        freed = 0.0
        for at, amount in self.entries:
            freed += amount
            if self.used - freed + need <= self.count:
                return at + self.seconds - now
        return self.seconds


class RateLimit(object):
    """Several windows that all must hold: at most `count` per any `seconds` each.

    Sliding windows (not token buckets): whatever window the platform counts in, fixed
    or sliding, a sender that obeys them never exceeds it. A request larger than a
    window's count waits for that window to be empty, so it is never refused forever.
    """

    def __init__(self, limits, clock=time.monotonic):
        # type: (List[Tuple[int, float]], Callable[[], float]) -> None
        self._clock = clock
        self._windows = [_Window(count, seconds) for count, seconds in limits]

    @property
    def unlimited(self):
        return not self._windows

    @property
    def smallest_capacity(self):
        # type: () -> Optional[int]
        """The most any single take can ever get (None when unlimited)."""
        return min(w.count for w in self._windows) if self._windows else None

    def time_until(self, n=1):
        # type: (int) -> float
        """Seconds until `n` may be taken in every window (0.0 if now)."""
        now = self._clock()
        wait = 0.0
        for window in self._windows:
            window.prune(now)
            wait = max(wait, window.time_until(n, now))
        return wait

    def take(self, n=1, at=None):
        # type: (int, Optional[float]) -> None
        """Take n now (or at `at`, in order: replaying history), even beyond the limit: for
        traffic that cannot wait (replies), which later traffic then waits for."""
        now = self._clock() if at is None else at
        for window in self._windows:
            window.prune(now)
            window.entries.append((now, float(n)))
            window.used += n

    def try_take(self, n=1):
        # type: (int) -> bool
        """Take n if every window allows it now."""
        if self.time_until(n) > 0:
            return False
        self.take(n)
        return True
