"""Datapoint mapping shared by uplink converters: `attributes` / `timeseries` lists of
{"type", "key", "value"} compiled once, evaluated per message with every failure named.
"""
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.conversion.casting import TYPES, CastError, cast
from thingsboard_gateway.conversion.expression import Template, compile_template

Failure = NamedTuple("Failure", [("section", str), ("key", str), ("expression", str), ("reason", str)])


class Datapoint(object):
    """One configured key: key template, value template, cast type."""

    __slots__ = ("key", "value", "type", "section")

    def __init__(self, key, value, type_name, section):
        # type: (Template, Template, str, str) -> None
        self.key = key
        self.value = value
        self.type = type_name
        self.section = section


def compile_datapoints(entries, section, file, path, compiler=compile_template):
    # type: (Any, str, str, str, Callable[[Any, str, str], Any]) -> List[Datapoint]
    """Compile an `attributes` or `timeseries` list; ConfigError names the bad entry."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ConfigError(file, path, "expected a list of {type, key, value}")
    out = []
    for i, entry in enumerate(entries):
        where = "%s[%d]" % (path, i)
        if not isinstance(entry, dict):
            raise ConfigError(file, where, "expected an object with type, key and value")
        for required in ("key", "value"):
            if required not in entry:
                raise ConfigError(file, where + "." + required, "required key is missing")
        type_name = entry.get("type", "raw")
        if type_name not in TYPES:
            raise ConfigError(file, where + ".type", "expected one of %s, got %r" % (", ".join(TYPES), type_name))
        out.append(Datapoint(compile_template(entry["key"], file, where + ".key"),
                             compiler(entry["value"], file, where + ".value"), type_name, section))
    return out


def evaluate_datapoints(points, data, failures, lookup=None, caster=cast):
    # type: (List[Datapoint], Any, List[Failure], Optional[Callable[[Template, Any], Tuple[Any, Optional[str]]]], Callable[[Any, str], Any]) -> Dict[str, Any]
    """{key: cast value} for every point found; each miss or bad cast appended to failures.
    lookup(template, data) evaluates expressions (default: Template.evaluate)."""
    evaluate = lookup or (lambda template, d: template.evaluate(d))
    values = {}
    for point in points:
        key, missing = point.key.evaluate(data)
        if missing is not None:
            failures.append(Failure(point.section, point.key.source, point.key.source, "key found nothing"))
            continue
        value, missing = evaluate(point.value, data)
        if missing is not None:
            failures.append(Failure(point.section, str(key), point.value.source, "%s found nothing" % missing))
            continue
        try:
            values[str(key)] = caster(value, point.type)
        except CastError as e:
            failures.append(Failure(point.section, str(key), point.value.source, "cannot cast to %s: %s"
                                    % (point.type, e)))
        except Exception as e:  # a custom caster's own failure: this key fails, the message goes on
            failures.append(Failure(point.section, str(key), point.value.source, "cannot cast to %s: %s: %s"
                                    % (point.type, type(e).__name__, e)))
    return values
