"""Pure serial downlink: attribute updates and RPCs -> the bytes written to the port.

Templates: `${<attribute name>}` / `${attributeKey}` / `${attributeValue}` for attribute
updates (`stringToDevice`), `${method}` / `${params}` / `${params.x}` for RPCs. Without a
`stringToDevice` an RPC writes "<method> <params>" and the device's delimiter.
"""
from typing import Any, Dict

from thingsboard_gateway.conversion.casting import cast
from thingsboard_gateway.conversion.expression import parse_template, render


def attribute_bytes(entry, key, value):
    # type: (Dict[str, Any], str, Any) -> bytes
    data = {key: value, "attributeKey": key, "attributeValue": value}
    return render(parse_template(entry["stringToDevice"]), data).encode("utf-8")


def rpc_bytes(entry, device, method, params):
    # type: (Dict[str, Any], Dict[str, Any], str, Any) -> bytes
    """What an RPC writes; params are cast to the entry's `type` first (ValueError if they cannot be)."""
    if params is not None and entry.get("type") not in (None, "raw", "json") and not isinstance(params, (dict, list)):
        params = cast(params, entry["type"])
    template = entry.get("stringToDevice")
    if template is None:
        template = "${method} ${params}" + device.get("delimiter", "\n") if params is not None else (
            "${method}" + device.get("delimiter", "\n"))
    return render(parse_template(template), {"method": method, "params": params}).encode("utf-8")
