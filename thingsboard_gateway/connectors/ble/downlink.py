"""BLE downlink conversion (pure): what an RPC or attribute write's value becomes on the
characteristic."""
from typing import Any


def to_bytes(value):
    # type: (Any) -> bytes
    """What a write sends: {"hex": "0a0b"}, a list of byte values, or text (UTF-8)."""
    if isinstance(value, dict):
        if "hex" in value:
            return bytes.fromhex(str(value["hex"]))
        if "value" in value:
            return to_bytes(value["value"])
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b <= 255 for b in value):
        return bytes(value)
    if isinstance(value, bool):
        return b"\x01" if value else b"\x00"
    return (value if isinstance(value, str) else str(value)).encode("utf-8")
