"""Report strategies, as upstream configures them (pure): when a value read from a device
is sent to ThingsBoard.

A strategy is `{"type": T, "reportPeriod": ms}`; T is one of
  ON_RECEIVED                 every value is sent (the default);
  ON_CHANGE                   the first value, then a value only when it differs from the
                              last one sent (floats within 0.001 count as unchanged);
  ON_REPORT_PERIOD            the first value, then the latest value every reportPeriod,
                              changed or not, with a fresh timestamp;
  ON_CHANGE_OR_REPORT_PERIOD  changes at once, and the latest value every reportPeriod.
The type is read without regard to case (as upstream); reportPeriod defaults to 10,000 ms.
It is set at four levels, the most specific winning: general (`thingsboard.reportStrategy`),
connector (the file's top-level `reportStrategy`), device (the device or mapping entry) and
datapoint (a `timeseries`/`attributes` entry). Converters hand the last two over as a
DeviceStrategy in the converted data's "reportStrategy"; conversion/report_filter.py
applies them."""
from typing import Any, Dict, Optional

from thingsboard_gateway.config.report_strategy import (  # noqa: F401  (re-exported for converters)
    DEFAULT_PERIOD_MS, ON_CHANGE, ON_CHANGE_OR_REPORT_PERIOD, ON_RECEIVED, ON_REPORT_PERIOD, RECEIVED, TYPES,
    Strategy, parse_strategy, strategy_problem)

FLOAT_TOLERANCE = 0.001
DATAPOINT_SECTIONS = ("timeseries", "telemetry", "attributes")


class DeviceStrategy(object):
    """The device- and datapoint-level strategies of one device or mapping entry."""

    __slots__ = ("device", "keys")

    def __init__(self, device, keys):
        # type: (Optional[Strategy], Dict[str, Strategy]) -> None
        self.device = device
        self.keys = keys

    def for_key(self, key):
        # type: (str) -> Optional[Strategy]
        """The datapoint's own strategy, else the device's (None: the connector's rules)."""
        return self.keys.get(key, self.device)

    def as_json(self):
        # type: () -> Dict[str, Any]
        """For dry runs: what this entry sets."""
        shown = {}  # type: Dict[str, Any]
        if self.device is not None:
            shown["device"] = {"type": self.device.type, "reportPeriod": self.device.period_ms}
        if self.keys:
            shown["keys"] = {k: {"type": s.type, "reportPeriod": s.period_ms} for k, s in sorted(self.keys.items())}
        return shown

    def __eq__(self, other):
        return isinstance(other, DeviceStrategy) and (self.device, self.keys) == (other.device, other.keys)

    def __ne__(self, other):
        return not self == other

    __hash__ = None  # type: ignore


def device_strategy(entry, legacy=None):
    # type: (Dict[str, Any], Optional[Strategy]) -> Optional[DeviceStrategy]
    """The strategies a device/mapping entry sets for itself and its datapoints (a
    datapoint is named by its `key`, or `tag` for Modbus), or None when it sets none.
    `legacy`: the device level when the entry has no reportStrategy (e.g. what
    sendDataOnlyOnChange means). A bad strategy is ignored here: the loader refuses it."""
    own = entry.get("reportStrategy")
    device = legacy
    if own is not None and strategy_problem(own) is None:
        device = parse_strategy(own)
    keys = {}  # type: Dict[str, Strategy]
    for section in DATAPOINT_SECTIONS:
        points = entry.get(section)
        for point in points if isinstance(points, list) else []:
            if isinstance(point, dict) and point.get("reportStrategy") is not None \
                    and strategy_problem(point["reportStrategy"]) is None:
                name = point.get("key", point.get("tag"))
                if isinstance(name, str):
                    keys[name] = parse_strategy(point["reportStrategy"])
    if device is None and not keys:
        return None
    return DeviceStrategy(device, keys)


def with_entry_strategy(entry, converter):
    # type: (Dict[str, Any], Dict[str, Any]) -> Dict[str, Any]
    """A mapping's converter section, with the mapping entry's own reportStrategy as its
    device level when the section sets none (MQTT, REST and request take it either place)."""
    if entry.get("reportStrategy") is not None and converter.get("reportStrategy") is None:
        return dict(converter, reportStrategy=entry["reportStrategy"])
    return converter


def differs(last, value):
    # type: (Any, Any) -> bool
    """Whether `value` is a change from `last` for ON_CHANGE: floats within 0.001 are
    the same value; anything else compares as is (1 and True differ)."""
    if type(last) is float or type(value) is float:
        if isinstance(last, (int, float)) and isinstance(value, (int, float)) \
                and not isinstance(last, bool) and not isinstance(value, bool):
            return abs(last - value) > FLOAT_TOLERANCE
        return True
    return type(last) is not type(value) or last != value
