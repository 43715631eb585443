"""Rate limits in the upstream notation (`"15:1,300:60"`) as token buckets.

Pure arithmetic with an injected clock: `RateLimit.time_until(n)` tells how long to wait
before `n` tokens are due, `try_take(n)` takes them when they are. Not thread-safe:
owned by the sender thread.
"""
import time
from typing import Callable, List, Optional, Tuple

DEFAULT_RATE_LIMITS = "15:1,300:60"
NO_LIMIT_TEXTS = ("", "0:0", "0:0,")


def parse_rate_limits(text, default=DEFAULT_RATE_LIMITS):
    # type: (Optional[str], str) -> List[Tuple[int, float]]
    """`"15:1,300:60"` -> [(15, 1.0), (300, 60.0)]; `"0:0,"` means no limit -> [].

    Upstream's placeholders (`DEFAULT_TELEMETRY_RATE_LIMIT`, ...) and None mean `default`.
    Raises ValueError with a readable reason for anything else.
    """
    if text is None or text.startswith("DEFAULT_"):
        text = default
    text = text.strip()
    if text in NO_LIMIT_TEXTS:
        return []
    limits = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        pieces = part.split(":")
        if len(pieces) != 2:
            raise ValueError("expected a rate limit like \"15:1,300:60\" (count:seconds), got \"%s\"" % text)
        try:
            count, seconds = int(pieces[0]), float(pieces[1])
        except ValueError:
            raise ValueError("expected a rate limit like \"15:1,300:60\" (count:seconds), got \"%s\"" % text)
        if count < 0 or seconds < 0:
            raise ValueError("rate limit counts and seconds must not be negative, got %r" % text)
        if count == 0 and seconds == 0:
            continue
        if count == 0 or seconds == 0:
            raise ValueError("rate limit %r would never allow anything" % part)
        limits.append((count, seconds))
    return limits


class RateLimit(object):
    """Several token buckets that all must have tokens: (count per seconds) each.

    A bucket holds at most `count` tokens and refills continuously at count/seconds.
    """

    def __init__(self, limits, clock=time.monotonic):
        # type: (List[Tuple[int, float]], Callable[[], float]) -> None
        self._clock = clock
        now = clock()
        self._buckets = [[float(count), float(count), count / seconds, now] for count, seconds in limits]

    @property
    def unlimited(self):
        return not self._buckets

    def _refill(self):
        now = self._clock()
        for bucket in self._buckets:
            tokens, capacity, rate, last = bucket
            bucket[0] = min(capacity, tokens + (now - last) * rate)
            bucket[3] = now

    def time_until(self, n=1):
        # type: (int) -> float
        """Seconds until `n` tokens are available in every bucket (0.0 if now)."""
        self._refill()
        wait = 0.0
        for tokens, capacity, rate, _ in self._buckets:
            need = min(float(n), capacity) - tokens
            if need > 0:
                wait = max(wait, need / rate)
        return wait

    @property
    def smallest_capacity(self):
        # type: () -> Optional[int]
        """The most tokens any single take can ever get (None when unlimited)."""
        return int(min(b[1] for b in self._buckets)) if self._buckets else None

    def take(self, n=1):
        # type: (int) -> None
        """Take n tokens now, even into debt: for traffic that cannot wait (replies),
        which later traffic then waits for."""
        self._refill()
        for bucket in self._buckets:
            bucket[0] -= float(n)

    def try_take(self, n=1):
        # type: (int) -> bool
        """Take `n` tokens if every bucket has them; a request larger than a bucket
        takes the whole bucket once it is full, so it is never refused forever."""
        if self.time_until(n) > 0:
            return False
        for bucket in self._buckets:
            bucket[0] -= min(float(n), bucket[1])
        return True
