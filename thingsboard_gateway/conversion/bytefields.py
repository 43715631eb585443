"""Numbers from byte ranges of a binary payload (upstream's custom REST/request converter
examples, `extensionConfig`): {"key", "type"/"datatype": int|float, "fromByte", "toByte"
(exclusive), "byteorder": big|little, "signed", "multiplier"}, or bits of one byte:
{"byteAddress", "fromBit", "toBit"} (exclusive). Pure."""
import math
import struct
from typing import Any, Dict, List, Tuple


def field_value(entry, data):
    # type: (Dict[str, Any], bytes) -> Any
    """One entry's value; ValueError when the payload is too short or the entry is malformed."""
    order = str(entry.get("byteorder", "big")).lower()
    if order not in ("big", "little"):
        raise ValueError("byteorder must be big or little")
    if "byteAddress" in entry:
        address, first, last = int(entry["byteAddress"]), int(entry.get("fromBit", 0)), int(entry.get("toBit", 8))
        if not 0 <= first < last <= 8 or address >= len(data):
            raise ValueError("no bits %d-%d of byte %d in %d bytes" % (first, last, address, len(data)))
        value = (data[address] >> first) & ((1 << (last - first)) - 1)  # type: Any
    else:
        start, end = int(entry.get("fromByte", 0)), int(entry.get("toByte", len(data)))
        chunk = data[start:end]
        if len(chunk) != end - start or not chunk:
            raise ValueError("needs bytes %d-%d, the payload has %d" % (start, end, len(data)))
        kind = str(entry.get("type", entry.get("datatype", "int"))).lower()
        if kind in ("float", "double") and len(chunk) in (4, 8):
            value = struct.unpack((">" if order == "big" else "<") + ("f" if len(chunk) == 4 else "d"), chunk)[0]
            if not math.isfinite(value):
                raise ValueError("not a finite number")
        elif kind in ("int", "integer", "long", "float", "double"):
            value = int.from_bytes(chunk, order, signed=bool(entry.get("signed", False)))
        else:
            raise ValueError("type %r is not int or float" % kind)
    multiplier = entry.get("multiplier", 1)
    if multiplier != 1:
        value = round(value * multiplier, 10)
    return value


def decode_fields(entries, data):
    # type: (List[Dict[str, Any]], bytes) -> Tuple[Dict[str, Any], List[Tuple[str, str]]]
    """({key: value}, [(key, why not)]) for every entry."""
    values, failures = {}, []
    for entry in entries:
        try:
            values[entry["key"]] = field_value(entry, data)
        except (KeyError, TypeError, ValueError) as e:
            failures.append((str(entry.get("key")), str(e)))
    return values, failures
