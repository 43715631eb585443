"""Checking and normalizing converted data before it enters storage (pure)."""
from typing import Any, Dict, Optional, Tuple

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


def normalize_record(data, now_ms, token=""):
    # type: (Any, int, str) -> Tuple[Optional[Record], Optional[str]]
    """(Record, None) for good data, (None, None) when there is nothing to send,
    (None, problem) for data that cannot be sent. Telemetry entries without `ts` get
    `now_ms` (the time the gateway received them)."""
    if not isinstance(data, dict):
        return None, "expected converted data as an object, got %s" % type(data).__name__
    name = data.get("deviceName")
    if not isinstance(name, str) or not name:
        return None, "deviceName is missing or empty"
    device_type = data.get("deviceType") or "default"
    if not isinstance(device_type, str):
        return None, "deviceType must be a string"
    telemetry, problem = _telemetry_entries(data.get("telemetry") or [], now_ms)
    if problem:
        return None, "%s: %s" % (name, problem)
    attributes, problem = _attributes(data.get("attributes") or {})
    if problem:
        return None, "%s: %s" % (name, problem)
    if not telemetry and not attributes:
        return None, None
    try:
        return Record.build(name, device_type, telemetry, attributes, token), None
    except (TypeError, ValueError) as e:  # values JSON cannot carry (sets, NaN is fine, objects)
        return None, "%s: values cannot be sent as JSON: %s" % (name, e)
