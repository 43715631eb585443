"""Casting extracted values to the upstream `type` names (pure).

string, integer/int, double/float, boolean/bool, raw (as is), json (serialized text).
A value that cannot be cast raises CastError: counted as an extraction failure, never
a crash and never a silently wrong value.
"""
import json
import math
from typing import Any, Callable, Dict, Optional

TYPES = ("string", "str", "integer", "int", "long", "double", "float", "boolean", "bool", "raw", "json")
STRING_TYPES = ("string", "str")


class CastError(ValueError):
    pass


def _integer(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CastError("%r is not a finite number" % value)
        return int(value) if value.is_integer() else int(round(value))
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text, 0) if text.lower().startswith(("0x", "0o", "0b")) else int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise CastError("%r is not an integer" % value)
            return _integer(number)
    raise CastError("%s is not an integer" % type(value).__name__)


def _double(value):
    if isinstance(value, float):  # what JSON numbers with a point are
        number = float(value)  # (a subclass's value as a plain float)
    elif isinstance(value, str):  # text protocols
        try:
            number = float(value)  # surrounding white space is allowed
        except ValueError:
            raise CastError("%r is not a number" % value)
    elif isinstance(value, bool):
        return float(value)
    elif isinstance(value, int):
        number = float(value)
    else:
        raise CastError("%s is not a number" % type(value).__name__)
    if not math.isfinite(number):  # JSON has no NaN or Infinity: ThingsBoard would refuse the message
        raise CastError("%r is not a finite number" % (value,))
    return number


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _boolean(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise CastError("%r is not a boolean" % (value,))


def _string(value):
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


CASTS = {
    "string": _string, "str": _string,
    "integer": _integer, "int": _integer, "long": _integer,
    "double": _double, "float": _double,
    "boolean": _boolean, "bool": _boolean,
    "raw": lambda v: v,
    "json": lambda v: json.dumps(v, separators=(",", ":"), allow_nan=False),
}  # type: Dict[str, Callable[[Any], Any]]


def device_text(text):
    # type: (str) -> Optional[str]
    """A `string` value from a line-oriented device (serial, socket, BLE), as upstream
    sends it: surrounding whitespace, CR and LF stripped; None (not sent) when nothing is
    left."""
    return text.strip() or None


def cast(value, type_name):
    # type: (Any, str) -> Any
    """The value as `type_name`; CastError when it cannot be."""
    try:
        caster = CASTS[type_name]
    except KeyError:
        raise CastError("unknown type %r" % type_name)
    try:
        return caster(value)
    except (OverflowError, RecursionError, ValueError, TypeError) as e:
        if isinstance(e, CastError):
            raise
        # a number beyond the double range, nesting too deep to serialize, NaN as JSON text ...
        raise CastError("%s: %s" % (type(e).__name__, e))
