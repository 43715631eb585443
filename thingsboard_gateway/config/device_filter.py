"""Device filtering, as upstream configures it: `thingsboard.deviceFiltering`
{"enable": true, "filterFile": "list.json"} names a file (relative to the config folder)

  {"deny":  {"<connector name in tb_gateway.json>": ["<regex>", ...]},
   "allow": {"<connector name>": ["<regex>", ...]}}

A regex must match the whole device name. Deny wins over allow, and a device that no
deny rule matches passes (so an allow list only documents exceptions to deny rules
written elsewhere). This module reads and checks the file; gateway/device_filter.py
applies it."""
import re
from typing import Any, Dict, List, Pattern

from thingsboard_gateway.config.errors import ConfigError

Rules = Dict[str, Dict[str, List[Pattern]]]  # "deny"/"allow" -> connector name -> patterns


def compile_rules(raw, shown):
    # type: (Any, str) -> Rules
    """The filter file's content, checked and compiled; ConfigError with the JSON path."""
    if not isinstance(raw, dict):
        raise ConfigError(shown, "", 'expected {"deny": {connector: [regex, ...]}, "allow": {...}}')
    rules = {"deny": {}, "allow": {}}  # type: Rules
    for key in raw:
        if key not in rules:
            raise ConfigError(shown, key, 'unknown key (expected "deny" and "allow")')
    for kind in ("deny", "allow"):
        section = raw.get(kind) or {}
        if not isinstance(section, dict):
            raise ConfigError(shown, kind, "expected an object: connector name -> list of regular expressions")
        for connector, patterns in section.items():
            path = "%s.%s" % (kind, connector)
            if isinstance(patterns, str):
                patterns = [patterns]
            if not isinstance(patterns, list):
                raise ConfigError(shown, path, "expected a list of regular expressions")
            compiled = []
            for i, pattern in enumerate(patterns):
                if not isinstance(pattern, str):
                    raise ConfigError(shown, "%s[%d]" % (path, i), "expected a regular expression (text)")
                try:
                    compiled.append(re.compile(pattern))
                except re.error as e:
                    raise ConfigError(shown, "%s[%d]" % (path, i), "not a regular expression: %s" % e)
            rules[kind][connector] = compiled
    return rules
