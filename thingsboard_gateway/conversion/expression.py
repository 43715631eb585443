"""The expression engine: `${...}` lookups in templates, parsed once, never eval'd.

    "${temperature}"                 the value at key `temperature`, with its JSON type
    "${a.b[0].c}", "${$.a.b}"        nested lookups; `$` is the message root
    "${$['key with.dot']}"           a quoted key
    "${$.temperature or $.temp}"     the first alternative that exists wins
    "${model}-${serial}"             a template mixing text and lookups: a string
    "Demo Device"                    no lookups: a constant

A template that is one lookup evaluates to the value itself (number, bool, object);
any other template to a string. A lookup that finds nothing makes the whole template
"not found" (reported by name, never silently empty). Pure: no I/O.
"""
import json
import re
from typing import Any, List, Optional, Tuple, Union

from thingsboard_gateway.config.errors import ConfigError

MISSING = object()
Step = Union[str, int]

_STEP = re.compile(r"""
    \.(?P<name>[^.\[\]\s]+)            # .name
  | \[\s*(?P<index>-?\d+)\s*\]         # [0]
  | \[\s*'(?P<squoted>[^']*)'\s*\]     # ['key']
  | \[\s*"(?P<dquoted>[^"]*)"\s*\]     # ["key"]
""", re.VERBOSE)
_FIRST = re.compile(r"[^.\[\]\s]+")
_OR = re.compile(r"\s+or\s+")


class ExpressionError(ValueError):
    """A malformed expression; `column` is 1-based within the config string."""

    def __init__(self, message, column):
        super(ExpressionError, self).__init__(message)
        self.column = column


class Lookup(object):
    """A path into JSON data: a list of keys and indexes."""

    __slots__ = ("text", "steps")

    def __init__(self, text, steps):
        # type: (str, List[Step]) -> None
        self.text = text
        self.steps = steps

    def find(self, data):
        # type: (Any) -> Any
        """The value at the path, or MISSING."""
        value = data
        for step in self.steps:
            if isinstance(step, int):
                if not isinstance(value, list) or not -len(value) <= step < len(value):
                    return MISSING
                value = value[step]
            else:
                if not isinstance(value, dict) or step not in value:
                    return MISSING
                value = value[step]
        return value


def parse_lookup(text, column):
    # type: (str, int) -> Lookup
    """`a.b[0]`, `$.a.b`, `$['x']`; column is where `text` starts (for errors)."""
    source = text.strip()
    if not source:
        raise ExpressionError("empty lookup", column)
    position = 0
    steps = []  # type: List[Step]
    if source.startswith("$"):
        position = 1
    else:
        first = _FIRST.match(source)
        if not first:
            raise ExpressionError("expected a key name", column)
        steps.append(first.group(0))
        position = first.end()
    while position < len(source):
        match = _STEP.match(source, position)
        if not match:
            raise ExpressionError("unexpected %r in lookup %r" % (source[position], source), column + position)
        if match.group("name") is not None:
            steps.append(match.group("name"))
        elif match.group("index") is not None:
            steps.append(int(match.group("index")))
        else:
            steps.append(match.group("squoted") if match.group("squoted") is not None else match.group("dquoted"))
        position = match.end()
    return Lookup(source, steps)


class Placeholder(object):
    """`${alt or alt ...}`: the first alternative found."""

    __slots__ = ("text", "alternatives")

    def __init__(self, text, alternatives):
        self.text = text
        self.alternatives = alternatives  # type: List[Lookup]

    def find(self, data):
        for lookup in self.alternatives:
            value = lookup.find(data)
            if value is not MISSING:
                return value
        return MISSING


class Template(object):
    """A parsed expression string. evaluate(data) -> (value, None) or (None, missing text)."""

    __slots__ = ("source", "parts")

    def __init__(self, source, parts):
        # type: (str, List[Union[str, Placeholder]]) -> None
        self.source = source
        self.parts = parts

    def evaluate(self, data):
        # type: (Any) -> Tuple[Any, Optional[str]]
        if len(self.parts) == 1 and isinstance(self.parts[0], Placeholder):
            value = self.parts[0].find(data)
            return (None, self.parts[0].text) if value is MISSING else (value, None)
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = part.find(data)
            if value is MISSING:
                return None, part.text
            out.append(as_text(value))
        return "".join(out), None


def render(template, data):
    # type: (Template, Any) -> str
    """The template's text for `data` (a value found alone becomes its JSON/text form);
    ValueError naming the lookup that found nothing."""
    value, missing = template.evaluate(data)
    if missing is not None:
        raise ValueError("%s found nothing in %s" % (missing, template.source))
    return as_text(value)


def as_text(value):
    # type: (Any) -> str
    """A value as the text a template writes: JSON for objects, arrays, booleans and null."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def parse_template(source):
    # type: (str) -> Template
    """Parse; ExpressionError (with a 1-based column) for malformed input."""
    parts = []  # type: List[Union[str, Placeholder]]
    position = 0
    while position < len(source):
        start = source.find("${", position)
        if start < 0:
            parts.append(source[position:])
            break
        if start > position:
            parts.append(source[position:start])
        end = source.find("}", start + 2)
        if end < 0:
            raise ExpressionError("unclosed ${", start + 1)
        inner = source[start + 2:end]
        if "${" in inner:
            raise ExpressionError("nested ${ inside ${...}", start + 3 + inner.index("${"))
        alternatives = []
        offset = 0
        for piece in _OR.split(inner):
            at = inner.index(piece, offset) if piece else offset
            alternatives.append(parse_lookup(piece, start + 3 + at))
            offset = at + len(piece)
        parts.append(Placeholder("${%s}" % inner, alternatives))
        position = end + 1
    return Template(source, parts or [""])


def compile_template(source, file, path):
    # type: (Any, str, str) -> Template
    """parse_template for config values: errors become ConfigError with file, JSON path
    and column."""
    if not isinstance(source, str):
        raise ConfigError(file, path, "expected an expression string, got %r" % (source,))
    try:
        return parse_template(source)
    except ExpressionError as e:
        raise ConfigError(file, path, "%s at column %d of %r" % (e, e.column, source))


def compile_regex(source, file, path):
    # type: (Any, str, str) -> Any
    """A regular expression from config (topic expressions); errors name the column."""
    if not isinstance(source, str):
        raise ConfigError(file, path, "expected a regular expression string, got %r" % (source,))
    try:
        return re.compile(source)
    except re.error as e:
        column = (e.pos or 0) + 1
        raise ConfigError(file, path, "invalid regular expression at column %d of %r: %s" % (column, source, e.msg))
