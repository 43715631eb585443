"""What an SNMP poll becomes on the platform (pure): each attribute or telemetry entry's
result, shaped by its method as upstream means it, without upstream's bugs.

  get                                   the value (text, number; see protocol.plain)
  multiget                              the values joined with "," (one GET)
  getnext, multigetnext, walk,
  multiwalk, bulkget, bulkwalk          {"<oid>": "<value as text>"}
  table, bulktable                      {"<row index>": {"<column>": "<value as text>"}}, every row
"""
from typing import Any, Dict, List, Optional, Tuple

from thingsboard_gateway.conversion.report import device_strategy

OID_MAPS = ("getnext", "multigetnext", "walk", "multiwalk", "bulkget", "bulkwalk")
TABLES = ("table", "bulktable")


def text(value):
    # type: (Any) -> str
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return value if isinstance(value, str) else ("" if value is None else str(value))


def shaped(method, result):
    # type: (str, Any) -> Any
    """A method's plain result (protocol.Agent's, or a recorded sample's) as it is sent."""
    if method == "multiget":
        return ",".join(text(v) for v in result)
    if method in OID_MAPS:
        return {oid: text(value) for oid, value in result.items()}
    if method in TABLES:
        return {row: {column: text(value) for column, value in columns.items()} for row, columns in result.items()}
    return result


class SnmpUplinkConverter(object):
    """One device's entries; `convert(results, ts)`: results {key: plain result}."""

    def __init__(self, device):
        # type: (Dict[str, Any]) -> None
        self.device = device
        self.strategy = device_strategy(device)
        self.entries = [("attributes", e) for e in device["attributes"]] + \
                       [("telemetry", e) for e in device["telemetry"]]

    def convert(self, results, ts):
        # type: (Dict[str, Any], int) -> Tuple[Optional[Dict[str, Any]], List[Tuple[str, str]]]
        """(the data for send_to_storage or None, keys with no result)."""
        attributes, telemetry = {}, {}  # type: Dict[str, Any], Dict[str, Any]
        missing = []  # type: List[Tuple[str, str]]
        for section, entry in self.entries:
            key = entry["key"]
            if key not in results or results[key] is None:
                missing.append((key, "no value"))
                continue
            (attributes if section == "attributes" else telemetry)[key] = shaped(entry["method"], results[key])
        if not attributes and not telemetry:
            return None, missing
        data = {"deviceName": self.device["deviceName"], "deviceType": self.device["deviceType"],
                "attributes": attributes, "telemetry": [{"ts": ts, "values": telemetry}] if telemetry else []}
        if self.strategy is not None:
            data["reportStrategy"] = self.strategy
        return data, missing
