"""OpcUaUplinkConverter: values read from one device's nodes -> its ThingsBoard data
(pure: the session reads the nodes or receives them from subscriptions)."""
from typing import Any, Dict, List, Optional, Tuple

from thingsboard_gateway.conversion.converter import Converter

Failure = Tuple[str, str]  # (key, reason)


def plain(value):
    # type: (Any) -> Any
    """OPC-UA values as JSON-able values."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "Value"):
        return plain(value.Value)
    return str(value)


class OpcUaUplinkConverter(Converter):
    """data: {"deviceName", "deviceType", "values": [(section, key, value, ts ms or None)],
    "ts": ms for values without their own}. Telemetry is grouped by timestamp."""

    def convert(self, config, data):
        # type: (Any, Dict[str, Any]) -> Optional[Dict[str, Any]]
        now = int(data["ts"])
        entries, attributes = {}, {}  # type: Dict[int, Dict[str, Any]], Dict[str, Any]
        for section, key, value, ts in data["values"]:
            if section == "timeseries":
                entries.setdefault(int(ts) if ts else now, {})[key] = plain(value)
            else:
                attributes[key] = plain(value)
        if not entries and not attributes:
            return None
        return {"deviceName": data["deviceName"], "deviceType": data.get("deviceType") or "default",
                "attributes": attributes,
                "telemetry": [{"ts": ts, "values": values} for ts, values in sorted(entries.items())]}

    @staticmethod
    def values_from_sample(mapping, sample):
        # type: (Dict[str, Any], Dict[str, Any]) -> Tuple[List[Tuple[str, str, Any, Optional[int]]], List[Failure]]
        """A recorded sample {"nodes": {expression: value}, "timestamps": {expression: ms}}
        as the (section, key, value, ts) the session would read for `mapping`."""
        nodes = sample.get("nodes") or {}
        stamps = sample.get("timestamps") or {}
        values, failures = [], []  # type: List[Tuple[str, str, Any, Optional[int]]], List[Failure]
        for section in ("attributes", "timeseries"):
            for entry in mapping[section]:
                expression = entry["value"]
                if expression not in nodes:
                    failures.append((entry["key"], "no value for %s in the sample" % expression))
                    continue
                values.append((section, entry["key"], nodes[expression], stamps.get(expression)))
        return values, failures
