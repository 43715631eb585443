"""ReportFilter: the one place that remembers what was sent, per connector, device,
section and key, and applies the report strategies of conversion/report.py.

Device path: `apply()` runs on the thread that hands data to the gateway (a connector's
thread), takes no lock and reads no clock. Period path: `due(period_ms)` runs on the
gateway's main thread, one Schedule job per report period in use (not a thread or a
timer per key); it reads the latest value of each key of that period and returns the
re-sends with a fresh timestamp. The two share per-key slots: the device path replaces a
slot's latest value (one attribute store), the period path reads it."""
import itertools
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from thingsboard_gateway.runtime.counters import counted
from thingsboard_gateway.conversion.report import (
    ON_CHANGE, ON_CHANGE_OR_REPORT_PERIOD, ON_RECEIVED, RECEIVED, DeviceStrategy, Strategy, differs)

TELEMETRY, ATTRIBUTES = "telemetry", "attributes"
_CHANGES = (ON_CHANGE, ON_CHANGE_OR_REPORT_PERIOD)


class _Slot(object):
    """One key of one device: the last value sent and the latest value received."""

    __slots__ = ("connector", "device", "device_type", "section", "key", "strategy", "sent", "latest")

    def __init__(self, connector, device, device_type, section, key, strategy, value):
        # type: (str, str, str, str, str, Strategy, Any) -> None
        self.connector = connector
        self.device = device
        self.device_type = device_type
        self.section = section
        self.key = key
        self.strategy = strategy
        self.sent = value
        self.latest = value


class ReportFilter(object):
    """Report strategies for every connector. `general`: thingsboard.reportStrategy;
    `connectors`: connector name -> its file's reportStrategy. `on_new_period(ms)` is
    called (on the device path) the first time a key of a new report period is seen, so
    that the owner schedules `due(ms)`. `wall` gives the re-sends' timestamps."""

    def __init__(self, general=RECEIVED, connectors=None, on_new_period=None, wall=time.time):
        # type: (Strategy, Optional[Dict[str, Strategy]], Optional[Callable[[int], None]], Callable[[], float]) -> None
        self.general = general
        self.connectors = dict(connectors or {})
        self._on_new_period = on_new_period
        self._wall = wall
        self._tables = {}  # type: Dict[Tuple[str, str, str], Dict[str, _Slot]]  (connector, device, section)
        self._groups = {}  # type: Dict[int, List[_Slot]]
        self._suppressed = itertools.count()  # values not sent at once (statistics); any thread

    @property
    def suppressed(self):
        # type: () -> int
        return counted(self._suppressed)

    def set_connectors(self, connectors):
        # type: (Dict[str, Strategy]) -> None
        """New connector-level strategies (a connector added, changed or removed; main
        thread): a connector whose strategy changed starts afresh (its remembered values
        and period slots are dropped), so that its next values meet the new one."""
        changed = {name for name in set(connectors) | set(self.connectors)
                   if connectors.get(name) != self.connectors.get(name)}
        self.connectors = dict(connectors)
        if changed:
            self._tables = {key: table for key, table in self._tables.items() if key[0] not in changed}
            self._groups = {period: [slot for slot in slots if slot.connector not in changed]
                            for period, slots in self._groups.items()}

    def applies(self, connector, device_strategy):
        # type: (str, Optional[DeviceStrategy]) -> bool
        """False when every value of this data is sent as received (the fast path)."""
        return device_strategy is not None or connector in self.connectors or self.general.type != ON_RECEIVED

    def apply(self, connector, device, device_type, telemetry, attributes, device_strategy):
        # type: (str, str, str, List[Dict[str, Any]], Dict[str, Any], Optional[DeviceStrategy]) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]
        """The telemetry entries ([{"ts", "values"}]) and attributes to send now, of
        validated data; remembers what it keeps back for the period re-sends."""
        kept_telemetry = []
        if telemetry:
            slots = self._table(connector, device, TELEMETRY)
            for entry in telemetry:
                values = self._kept(slots, connector, device, device_type, TELEMETRY, entry["values"],
                                    device_strategy)
                if values:
                    kept_telemetry.append({"ts": entry["ts"], "values": values})
        if attributes:
            attributes = self._kept(self._table(connector, device, ATTRIBUTES), connector, device, device_type,
                                    ATTRIBUTES, attributes, device_strategy)
        return kept_telemetry, attributes

    def _table(self, connector, device, section):
        # type: (str, str, str) -> Dict[str, _Slot]
        table = self._tables.get((connector, device, section))
        if table is None:
            table = self._tables.setdefault((connector, device, section), {})
        return table

    def _kept(self, slots, connector, device, device_type, section, values, device_strategy):
        # type: (Dict[str, _Slot], str, str, str, str, Dict[str, Any], Optional[DeviceStrategy]) -> Dict[str, Any]
        kept = {}
        for key, value in values.items():
            slot = slots.get(key)
            if slot is None:
                strategy = (device_strategy.for_key(key) if device_strategy is not None else None) \
                    or self.connectors.get(connector, self.general)
                new = _Slot(connector, device, device_type, section, key, strategy, value)
                slot = slots.setdefault(key, new)
                if slot is new:  # the first value is always sent
                    if strategy.type not in (ON_RECEIVED, ON_CHANGE):
                        self._join(strategy.period_ms, slot)
                    kept[key] = value
                    continue
            kind = slot.strategy.type
            if kind is ON_RECEIVED:
                kept[key] = value
                continue
            slot.latest = value
            sent = slot.sent
            if kind in _CHANGES and not (value == sent and type(value) is type(sent)) and differs(sent, value):
                slot.sent = value
                kept[key] = value
            else:
                next(self._suppressed)
        return kept

    def _join(self, period_ms, slot):
        # type: (int, _Slot) -> None
        group = self._groups.get(period_ms)
        if group is None:
            group = self._groups.setdefault(period_ms, [])
            group.append(slot)
            if self._on_new_period is not None:
                self._on_new_period(period_ms)
        else:
            group.append(slot)

    def periods(self):
        # type: () -> List[int]
        """The report periods (ms) in use."""
        return sorted(self._groups)

    def due(self, period_ms):
        # type: (int) -> List[Tuple[str, Dict[str, Any]]]
        """The period re-sends: (connector, converted data) per device with a key of this
        period, each key's latest value with the current time."""
        now = int(self._wall() * 1000)
        out = {}  # type: Dict[Tuple[str, str], Dict[str, Any]]
        for slot in list(self._groups.get(period_ms, ())):
            data = out.get((slot.connector, slot.device))
            if data is None:
                data = out[(slot.connector, slot.device)] = {
                    "deviceName": slot.device, "deviceType": slot.device_type,
                    "telemetry": [{"ts": now, "values": {}}], "attributes": {}}
            value = slot.latest
            slot.sent = value
            if slot.section == TELEMETRY:
                data["telemetry"][0]["values"][slot.key] = value
            else:
                data["attributes"][slot.key] = value
        for data in out.values():
            if not data["telemetry"][0]["values"]:
                data["telemetry"] = []
        return [(connector, data) for (connector, _), data in out.items()]

    def __len__(self):
        return sum(len(table) for table in self._tables.values())

