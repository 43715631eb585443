"""Timestamps from device data: epoch seconds/milliseconds or date strings -> ms (pure)."""
import math
from typing import Any

# ThingsBoard stores and shows 1970 to the end of year 9999 (ms).
MAX_MS = 253402300799999

_FORMATS_DAYFIRST = ("%d.%m.%Y %H:%M:%S.%f", "%d.%m.%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S.%f", "%d/%m/%Y %H:%M:%S",
                     "%d-%m-%Y %H:%M:%S")
_FORMATS_MONTHFIRST = ("%m/%d/%Y %H:%M:%S.%f", "%m/%d/%Y %H:%M:%S", "%m.%d.%Y %H:%M:%S", "%m-%d-%Y %H:%M:%S")
_COMMON = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S",
           "%Y/%m/%d %H:%M:%S")


def to_millis(value, dayfirst=False):
    # type: (Any, bool) -> int
    """ms since the epoch. Numbers below 10^11 are taken as seconds. Naive date strings
    are UTC. ValueError when the value is no timestamp or is out of range (before 1970,
    after 9999, NaN, infinite)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("%r is not a timestamp" % value)
        ms = int(value * 1000) if abs(value) < 1e11 else int(value)
        if not 0 <= ms <= MAX_MS:
            raise ValueError("%r is out of the range of timestamps (1970 to 9999)" % (value,))
        return ms
    if not isinstance(value, str):
        raise ValueError("%s is not a timestamp" % type(value).__name__)
    text = value.strip()
    try:
        return to_millis(float(text), dayfirst)
    except ValueError:
        pass
    import datetime  # only for text timestamps (2 ms to import on Python 3.7, off the start path)
    parsed = None
    iso = text[:-1] + "+00:00" if text.endswith("Z") else text
    try:
        parsed = datetime.datetime.fromisoformat(iso)
    except ValueError:
        for fmt in (_FORMATS_DAYFIRST if dayfirst else _FORMATS_MONTHFIRST) + _COMMON:
            try:
                parsed = datetime.datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValueError("%r is not a timestamp" % value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    ms = int(parsed.timestamp() * 1000)
    if not 0 <= ms <= MAX_MS:
        raise ValueError("%r is before 1970" % value)
    return ms
