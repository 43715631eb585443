"""OPC-UA downlink conversion (pure): an RPC's or attribute update's values -> what the
session writes or passes to a method call, as (value, OPC-UA variant type name)."""
from typing import Any, Dict, List, Optional, Tuple

# rpc_methods argument types (upstream's names) -> OPC-UA variant types
VARIANTS = {"integer": "Int64", "int": "Int64", "long": "Int64", "float": "Float", "double": "Double",
            "string": "String", "boolean": "Boolean", "bool": "Boolean"}


def cast_for(variant_name, value):
    # type: (str, Any) -> Any
    """`value` (from the platform: often text) as the node's data type wants it; ValueError
    when it cannot be."""
    if variant_name == "Boolean":
        return value if isinstance(value, bool) else str(value).strip().lower() in ("true", "1", "on")
    if variant_name in ("Float", "Double"):
        return float(value)
    if "Int" in variant_name or variant_name in ("Byte", "SByte"):
        return int(value)
    if variant_name == "String":
        return str(value)
    return value


def method_arguments(entry, params):
    # type: (Dict[str, Any], Any) -> List[Tuple[Any, Optional[str]]]
    """The arguments of an rpc_methods call: the platform's params (a list, or
    {"arguments": [...]}) or else the configured defaults, each with the variant type
    its configured argument names (None: let python-opcua guess)."""
    defaults = entry["arguments"]
    values = params if isinstance(params, list) else (params.get("arguments") if isinstance(params, dict) else None)
    if values is None:
        values = [a.get("value") for a in defaults]
    return [(value, VARIANTS.get(defaults[i]["type"]) if i < len(defaults) else None)
            for i, value in enumerate(values)]
