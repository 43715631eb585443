"""Pure serial downlink: attribute updates and RPCs -> the bytes written to the port.

Templates: `${attr}` / `${attributeKey}` / `${attributeValue}` for attribute updates
(`stringToDevice`), `${method}` / `${params}` / `${params.x}` for RPCs. Without a
`stringToDevice` an RPC writes "<method> <params>" and the device's delimiter.
"""
import json
import re
from typing import Any, Dict

from thingsboard_gateway.conversion.casting import cast

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def _text(value):
    # type: (Any) -> str
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def fill(template, values):
    # type: (str, Dict[str, Any]) -> str
    """The template with each ${name} (or ${a.b}) replaced; ValueError names a missing one."""
    def replace(match):
        value = values  # type: Any
        for part in match.group(1).strip().split("."):
            if not isinstance(value, dict) or part not in value:
                raise ValueError("nothing for ${%s} in %s" % (match.group(1), template))
            value = value[part]
        return _text(value)
    return _PLACEHOLDER.sub(replace, template)


def attribute_bytes(entry, key, value):
    # type: (Dict[str, Any], str, Any) -> bytes
    return fill(entry["stringToDevice"], {key: value, "attributeKey": key, "attributeValue": value}).encode("utf-8")


def rpc_bytes(entry, device, method, params):
    # type: (Dict[str, Any], Dict[str, Any], str, Any) -> bytes
    """What an RPC writes; params are cast to the entry's `type` first (ValueError if they cannot be)."""
    if params is not None and entry.get("type") not in (None, "raw", "json") and not isinstance(params, (dict, list)):
        params = cast(params, entry["type"])
    template = entry.get("stringToDevice")
    if template is None:
        template = "${method} ${params}" + device.get("delimiter", "\n") if params is not None else (
            "${method}" + device.get("delimiter", "\n"))
    return fill(template, {"method": method, "params": params}).encode("utf-8")
