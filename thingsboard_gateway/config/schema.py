"""A small declarative validator for JSON configuration.

A spec is built from `Field` objects; `validate(value, field, file, path)` returns the
value with defaults filled in, raises `ConfigError` naming the file, the JSON path and
what was expected, and collects unknown keys as warnings. Pure: no I/O.
"""
import json
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from thingsboard_gateway.config.errors import ConfigError

_MISSING = object()


class Field(object):
    """What one JSON value must be.

    kind: "int", "number", "bool", "str", "object", "list" or "any".
    fields: for objects, the known keys; unknown keys warn unless `extra` is True.
    item: for lists, the Field of each element.
    choices, min, max: allowed values and inclusive bounds.
    check: optional callable(value) returning an error text or None.
    """

    def __init__(self, kind, required=False, default=_MISSING, choices=None, min=None, max=None,
                 fields=None, item=None, extra=False, check=None, describe=None):
        self.kind = kind
        self.required = required
        self.default = default
        self.choices = choices
        self.min = min
        self.max = max
        self.fields = fields or {}  # type: Dict[str, Field]
        self.item = item
        self.extra = extra
        self.check = check  # type: Optional[Callable[[Any], Optional[str]]]
        self.describe = describe

    def expected(self):
        # type: () -> str
        """Human text of what this field accepts, used in error messages."""
        if self.describe:
            return self.describe
        if self.choices is not None:
            return "one of " + ", ".join(json.dumps(c) for c in self.choices)
        names = {"int": "an integer", "number": "a number", "bool": "true or false",
                 "str": "a string", "object": "an object", "list": "a list", "any": "a value"}
        text = names[self.kind]
        if self.min is not None and self.max is not None:
            text += " %s-%s" % (self.min, self.max)
        elif self.min is not None:
            text += " >= %s" % self.min
        return text


ACCEPTED_VALUE = Field("any")  # a known key this gateway accepts and does not act on
# Keys every object of a connector file may have, checked on their own (a connector's,
# device's or datapoint's report strategy: config/report_strategy.py).
EVERYWHERE = frozenset(["reportStrategy"])


def show(value):
    # type: (Any) -> str
    """A short JSON rendering of a bad value for error messages."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def join(path, key):
    # type: (str, Any) -> str
    """JSON path text: `a.b`, `a[0]`."""
    if isinstance(key, int):
        return "%s[%d]" % (path, key)
    return "%s.%s" % (path, key) if path else key


def _kind_ok(kind, value):
    if kind == "any":
        return True
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "list":
        return isinstance(value, list)
    raise ValueError("unknown kind %r" % kind)


def validate(value, field, file, path="", warnings=None):
    # type: (Any, Field, str, str, Optional[List[str]]) -> Any
    """Check `value` against `field`; return it with object defaults filled in."""
    def fail(message=None):
        raise ConfigError(file, path, message or "expected %s, got %s" % (field.expected(), show(value)))

    if not _kind_ok(field.kind, value):
        fail()
    if field.choices is not None and value not in field.choices:
        fail()
    if field.min is not None and value < field.min:
        fail()
    if field.max is not None and value > field.max:
        fail()
    if field.check is not None:
        problem = field.check(value)
        if problem:
            fail(problem)
    if field.kind == "object":
        return _validate_object(value, field, file, path, warnings)
    if field.kind == "list" and field.item is not None:
        return [validate(v, field.item, file, join(path, i), warnings) for i, v in enumerate(value)]
    return value


def _validate_object(value, field, file, path, warnings):
    result = dict(value)
    for key, sub in field.fields.items():
        if key in value:
            result[key] = validate(value[key], sub, file, join(path, key), warnings)
        elif sub.required:
            raise ConfigError(file, join(path, key), "required key is missing (expected %s)" % sub.expected())
        elif sub.default is not _MISSING:
            default = sub.default() if callable(sub.default) else sub.default
            if sub.kind == "object":  # fill the nested defaults too
                default = _validate_object(default, sub, file, join(path, key), None)
            result[key] = default
    if not field.extra and field.fields and warnings is not None:
        for key in value:
            if key not in field.fields and key not in EVERYWHERE:
                warnings.append("%s: %s: unknown key (ignored)" % (file, join(path, key)))
    return result


def walk(value, path=""):
    # type: (Any, str) -> Iterator[Tuple[str, str, Any]]
    """(JSON path, key, value) of every member of every object inside `value`."""
    if isinstance(value, dict):
        for key, item in value.items():
            here = "%s.%s" % (path, key) if path else key
            yield here, key, item
            for found in walk(item, here):
                yield found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            for found in walk(item, "%s[%d]" % (path, i)):
                yield found


def check_unique(items, key, file, path):
    # type: (List[Dict[str, Any]], str, str, str) -> None
    """ConfigError naming the second entry of `path` whose `key` repeats an earlier one's."""
    seen = set()
    for i, item in enumerate(items):
        if item[key] in seen:
            raise ConfigError(file, "%s[%d].%s" % (path, i, key), "%r is configured twice" % (item[key],))
        seen.add(item[key])
