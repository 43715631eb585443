"""Checking and normalizing converted data before it enters storage (pure)."""
import re
from typing import Any, Callable, Dict, List, Optional, Tuple

from thingsboard_gateway.storage.record import Record


def _telemetry_entries(telemetry, now_ms):
    if isinstance(telemetry, dict):
        telemetry = [telemetry]
    if not isinstance(telemetry, list):
        return None, "telemetry must be a list or an object, got %s" % type(telemetry).__name__
    entries = []
    for item in telemetry:
        if not isinstance(item, dict):
            return None, "telemetry entries must be objects, got %s" % type(item).__name__
        if "values" in item:
            values = item["values"]
            if not isinstance(values, dict):
                return None, "telemetry values must be an object"
            ts = item.get("ts", now_ms)
            if not isinstance(ts, (int, float)) or isinstance(ts, bool):
                return None, "telemetry ts must be a number of milliseconds"
            if not 0 <= ts <= MAX_TS:  # also NaN
                return None, "telemetry ts %r is out of range (0 to %d ms)" % (ts, MAX_TS)
            entry = {"ts": int(ts), "values": values}
        else:
            values = item
            entry = {"ts": now_ms, "values": values}
        if values:
            entries.append(entry)
    return entries, None


def _attributes(attributes):
    if isinstance(attributes, dict):
        return dict(attributes), None
    if isinstance(attributes, list):  # upstream converters often emit [{key: value}, ...]
        merged = {}  # type: Dict[str, Any]
        for item in attributes:
            if not isinstance(item, dict):
                return None, "attributes entries must be objects, got %s" % type(item).__name__
            merged.update(item)
        return merged, None
    return None, "attributes must be an object or a list, got %s" % type(attributes).__name__


# ThingsBoard's UI and API cap device names (and profile names) at 255 characters.
MAX_NAME = 255
# Timestamps ThingsBoard can store and show: 1970 to the end of year 9999, in ms.
MAX_TS = 253402300799999
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def name_problem(what, value):
    # type: (str, Any) -> Optional[str]
    """Why `value` cannot be a device name or type (None when it can): it must be text,
    not blank, at most 255 characters, without control characters."""
    if not isinstance(value, str):
        return "%s must be text, got %s" % (what, type(value).__name__)
    if not value.strip():
        return "%s is empty" % what
    if len(value) > MAX_NAME:
        return "%s is %d characters long (at most %d): %r..." % (what, len(value), MAX_NAME, value[:40])
    if _CONTROL.search(value):
        return "%s contains control characters: %r" % (what, value[:80])
    return None


# Names already found good: devices send again and again under the same few names, and the
# check (a regular expression among others) costs more than a set lookup.
_GOOD_NAMES = set()  # type: set
_GOOD_NAMES_MAX = 10000


def _name_problem(what, value):
    # type: (str, Any) -> Optional[str]
    if type(value) is str and value in _GOOD_NAMES:
        return None
    problem = name_problem(what, value)
    if problem is None and type(value) is str:
        if len(_GOOD_NAMES) >= _GOOD_NAMES_MAX:
            _GOOD_NAMES.clear()
        _GOOD_NAMES.add(value)
    return problem


def normalize_record(data, now_ms, token="", report=None):
    # type: (Any, int, str, Optional[Callable[[str, str, List[Dict[str, Any]], Dict[str, Any]], Tuple[List[Dict[str, Any]], Dict[str, Any]]]]) -> Tuple[Optional[Record], Optional[str]]
    """(Record, None) for good data, (None, None) when there is nothing to send,
    (None, problem) for data that cannot be sent. Telemetry entries without `ts` get
    `now_ms` (the time the gateway received them). `report(name, type, telemetry,
    attributes)`: the report strategies, given the checked values, return what to send."""
    if not isinstance(data, dict):
        return None, "expected converted data as an object, got %s" % type(data).__name__
    name = data.get("deviceName")
    if name is None:
        return None, "deviceName is missing"
    problem = _name_problem("deviceName", name)
    if problem:
        return None, problem
    device_type = data.get("deviceType") or "default"
    problem = _name_problem("deviceType", device_type)
    if problem:
        return None, "%s: %s" % (name, problem)
    telemetry, problem = _telemetry_entries(data.get("telemetry") or [], now_ms)
    if problem:
        return None, "%s: %s" % (name, problem)
    attributes, problem = _attributes(data.get("attributes") or {})
    if problem:
        return None, "%s: %s" % (name, problem)
    if report is not None:
        telemetry, attributes = report(name, device_type, telemetry, attributes)
    if not telemetry and not attributes:
        return None, None
    try:
        return Record.build(name, device_type, telemetry, attributes, token), None
    except (TypeError, ValueError, RecursionError) as e:  # sets, objects, NaN/Infinity, nesting too deep
        return None, "%s: values cannot be sent as JSON: %s" % (name, e)
