"""Which rate limits apply to which traffic, from config and the platform's session limits.

Two kinds of traffic, each with three sets of buckets (all must hold):
- devices' traffic (`v1/gateway/*`, the sender): `deviceMessagesRateLimits`,
  `deviceRateLimits` (telemetry messages), `deviceDpRateLimits` (telemetry datapoints),
  and the server's `gatewayRateLimits` {messages, telemetryMessages, telemetryDataPoints};
- the gateway's own (`v1/devices/me/*`: statistics, RPC replies): `messagesRateLimits`,
  `rateLimits`, `dpRateLimits`, and the server's `rateLimits` {...}.
Upstream's `DEFAULT_*` placeholders (and absent keys) set no client-side limit. Server
numbers are taken at 80 % (upstream's TB_DEFAULT_RATE_LIMIT_PERCENTAGE); configured and
server buckets are all kept, so the strictest wins.
"""
import collections
import logging
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from thingsboard_gateway.platform.ratelimit import RateLimit, parse_rate_limits

log = logging.getLogger(__name__)

SERVER_SHARE = 0.8
RECENT = 1000  # messages remembered for limits set later (TrafficLimits.carry)
CONFIG_KEYS = {
    "devices": ("deviceMessagesRateLimits", "deviceRateLimits", "deviceDpRateLimits"),
    "gateway": ("messagesRateLimits", "rateLimits", "dpRateLimits"),
}
SERVER_SECTION = {"devices": "gatewayRateLimits", "gateway": "rateLimits"}
SERVER_KEYS = ("messages", "telemetryMessages", "telemetryDataPoints")

Spec = List[Tuple[int, float]]


def configured(thingsboard, kind):
    # type: (Dict[str, Any], str) -> Tuple[Spec, Spec, Spec]
    """(messages, telemetry messages, telemetry datapoints) from tb_gateway.json."""
    out = []
    for key in CONFIG_KEYS[kind]:
        text = thingsboard.get(key)
        out.append([] if text is None or text.startswith("DEFAULT_") else parse_rate_limits(text))
    return out[0], out[1], out[2]


def from_server(answer, kind):
    # type: (Dict[str, Any], str) -> Tuple[Spec, Spec, Spec]
    """The server's limits for `kind`, scaled to SERVER_SHARE; unreadable parts skipped."""
    section = answer.get(SERVER_SECTION[kind]) or {}
    out = []
    for key in SERVER_KEYS:
        try:
            spec = parse_rate_limits(section.get(key) or "0:0,")
        except ValueError:
            log.warning("Ignoring the platform's unreadable %s.%s: %r", SERVER_SECTION[kind], key, section.get(key))
            spec = []
        out.append([(max(1, int(count * SERVER_SHARE)), seconds) for count, seconds in spec])
    return out[0], out[1], out[2]


class TrafficLimits(object):
    """Message, telemetry-message and telemetry-datapoint buckets for one kind of traffic.
    Not thread-safe on its own: the owner serializes calls."""

    def __init__(self, messages=(), telemetry_messages=(), datapoints=(), clock=time.monotonic):
        self.messages = RateLimit(list(messages), clock)
        self.telemetry_messages = RateLimit(list(telemetry_messages), clock)
        self.datapoints = RateLimit(list(datapoints), clock)
        self._clock = clock
        # The last RECENT messages, so that limits set later (the platform's session limits,
        # which come after the first announcements) count what was already sent.
        self._recent = collections.deque(maxlen=RECENT)  # type: collections.deque

    def carry(self, old):
        # type: (TrafficLimits) -> TrafficLimits
        """Count what `old` took recently against these limits too; returns self."""
        for at, telemetry, datapoints in old._recent:
            self.take(telemetry, datapoints, at)
        return self

    @classmethod
    def combine(cls, *specs, **kwargs):
        """All buckets of several (messages, telemetry, datapoints) triples together."""
        return cls([b for s in specs for b in s[0]], [b for s in specs for b in s[1]],
                   [b for s in specs for b in s[2]], **kwargs)

    @property
    def max_datapoints(self):
        # type: () -> Optional[int]
        return self.datapoints.smallest_capacity

    def wait_time(self, telemetry, datapoints):
        # type: (bool, int) -> float
        """Seconds until a message (telemetry or not, with `datapoints`) may go."""
        wait = self.messages.time_until(1)
        if telemetry:
            wait = max(wait, self.telemetry_messages.time_until(1), self.datapoints.time_until(datapoints))
        return wait

    def take(self, telemetry, datapoints, at=None):
        # type: (bool, int, Optional[float]) -> None
        if at is None:
            at = self._clock()
        self.messages.take(1, at)
        if telemetry:
            self.telemetry_messages.take(1, at)
            self.datapoints.take(datapoints, at)
        self._recent.append((at, telemetry, datapoints))
