"""Timestamps from device data: epoch seconds/milliseconds or date strings -> ms (pure)."""
import datetime
from typing import Any

_FORMATS_DAYFIRST = ("%d.%m.%Y %H:%M:%S.%f", "%d.%m.%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S.%f", "%d/%m/%Y %H:%M:%S",
                     "%d-%m-%Y %H:%M:%S")
_FORMATS_MONTHFIRST = ("%m/%d/%Y %H:%M:%S.%f", "%m/%d/%Y %H:%M:%S", "%m.%d.%Y %H:%M:%S", "%m-%d-%Y %H:%M:%S")
_COMMON = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S",
           "%Y/%m/%d %H:%M:%S")


def to_millis(value, dayfirst=False):
    # type: (Any, bool) -> int
    """ms since the epoch. Numbers below 10^11 are taken as seconds. Naive date strings
    are UTC. ValueError when the value is no timestamp."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, (int, float)):
        return int(value * 1000) if abs(value) < 1e11 else int(value)
    if not isinstance(value, str):
        raise ValueError("%s is not a timestamp" % type(value).__name__)
    text = value.strip()
    try:
        return to_millis(float(text), dayfirst)
    except ValueError:
        pass
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
    return int(parsed.timestamp() * 1000)
