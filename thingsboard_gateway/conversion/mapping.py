"""Datapoint mapping shared by uplink converters: `attributes` / `timeseries` lists of
{"type", "key", "value"} compiled once, evaluated per message with every failure named.
"""
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.conversion.casting import CASTS, TYPES, CastError, cast
from thingsboard_gateway.conversion.expression import MISSING, Placeholder, Template, compile_template

Failure = NamedTuple("Failure", [("section", str), ("key", str), ("expression", str), ("reason", str)])


class Datapoint(object):
    """One configured key: key template, value template, cast type. For the plain JSON
    lookups most mappings are made of, what evaluating would find out every message is
    worked out once: `fixed_key` (a key without ${...}), `field` (a value that is
    "${name}", one key of the message) and `caster` (the type's cast function)."""

    __slots__ = ("key", "value", "type", "section", "fixed_key", "field", "caster")

    def __init__(self, key, value, type_name, section):
        # type: (Template, Template, str, str) -> None
        self.key = key
        self.value = value
        self.type = type_name
        self.section = section
        parts = getattr(key, "parts", None)
        self.fixed_key = parts[0] if parts and len(parts) == 1 and isinstance(parts[0], str) else None
        self.field = single_field(value)
        self.caster = CASTS.get(type_name)


def single_field(template):
    # type: (Any) -> Optional[str]
    """`name` for a template that is exactly "${name}" (one lookup of one key), else None."""
    parts = getattr(template, "parts", None)
    if not parts or len(parts) != 1 or not isinstance(parts[0], Placeholder):
        return None
    alternatives = parts[0].alternatives
    if len(alternatives) != 1 or len(alternatives[0].steps) != 1 or not isinstance(alternatives[0].steps[0], str):
        return None
    return alternatives[0].steps[0]


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


def evaluate_template(template, data):
    # type: (Template, Any) -> Tuple[Any, Optional[str]]
    """A template's own evaluation: (value, None) or (None, what was missing)."""
    return template.evaluate(data)


def evaluate_datapoints(points, data, failures, lookup=None, caster=cast):
    # type: (List[Datapoint], Any, List[Failure], Optional[Callable[[Template, Any], Tuple[Any, Optional[str]]]], Callable[[Any, str], Any]) -> Dict[str, Any]
    """{key: cast value} for every point found; each miss or bad cast appended to failures.
    lookup(template, data) evaluates expressions (default: Template.evaluate, with the
    plain keys and "${name}" values read directly); caster(value, type) casts (default:
    cast(), through each point's own cast function)."""
    plain = lookup is None and isinstance(data, dict)
    evaluate = lookup or evaluate_template
    direct = caster is cast
    values = {}
    for point in points:
        key = point.fixed_key
        if key is None:
            key, missing = point.key.evaluate(data)
            if missing is not None:
                failures.append(Failure(point.section, point.key.source, point.key.source, "key found nothing"))
                continue
            key = str(key)
        if plain and point.field is not None:
            value = data.get(point.field, MISSING)
            if value is MISSING:
                failures.append(Failure(point.section, key, point.value.source, "%s found nothing"
                                        % point.value.source))
                continue
        else:
            value, missing = evaluate(point.value, data)
            if missing is not None:
                failures.append(Failure(point.section, key, point.value.source, "%s found nothing" % missing))
                continue
        try:
            if direct and point.caster is not None:  # its failures read as cast()'s (the branches below)
                values[key] = point.caster(value)
            else:
                values[key] = caster(value, point.type)
        except CastError as e:
            failures.append(Failure(point.section, key, point.value.source, "cannot cast to %s: %s"
                                    % (point.type, e)))
        except Exception as e:  # a custom caster's own failure: this key fails, the message goes on
            failures.append(Failure(point.section, key, point.value.source, "cannot cast to %s: %s: %s"
                                    % (point.type, type(e).__name__, e)))
    return values
