"""Rate limits in the upstream notation (`"15:1,300:60"`): parsing and validation (pure).
The limits themselves are enforced by platform/ratelimit.py."""
from typing import List, Optional, Tuple

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
