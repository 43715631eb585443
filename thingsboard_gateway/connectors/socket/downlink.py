"""Socket downlink conversion (pure): an attribute update's value or an RPC's params as
the bytes sent to the device: text (JSON for objects and lists) in the entry's encoding."""
from typing import Any

from thingsboard_gateway.conversion.expression import as_text


def device_bytes(value, encoding):
    # type: (Any, str) -> bytes
    """UnicodeError when the text has no form in `encoding`."""
    return as_text(value if value is not None else "").encode(encoding)
