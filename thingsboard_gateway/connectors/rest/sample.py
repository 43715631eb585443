"""`check --connector FILE --sample S` and the case folders for the rest connector: the
uplink converter on a recorded sample (apart from uplink.py, which must not import the
config module)."""
from typing import Any, List, Tuple

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.connectors.rest.config import load
from thingsboard_gateway.connectors.http.uplink import json_converter


def convert_sample(config, shown, sample):
    # type: (Any, str, Any) -> Tuple[Any, List[Tuple[str, str]]]
    """For `check --sample` and the case folders: {"endpoint": "/path" (default: the first
    mapping), "body": JSON, "ts": ms} -> (converted list, failures)."""
    mappings = load(config, shown)["mapping"]
    if not isinstance(sample, dict) or "body" not in sample:
        raise ConfigError("sample", "body", "expected {\"endpoint\": path, \"body\": the request's JSON}")
    endpoint = sample.get("endpoint") or (mappings[0]["endpoint"] if mappings else None)
    index = next((i for i, m in enumerate(mappings) if m["endpoint"] == endpoint), None)
    if index is None:
        raise ConfigError("sample", "endpoint", "no mapping of %s has endpoint %r" % (shown, endpoint))
    converter = mappings[index]["converter"]
    if converter["type"] != "json":
        raise ConfigError(shown, "mapping[%d].converter" % index, "a custom converter cannot be dry-run")
    converted, failures = json_converter(converter, shown, "mapping[%d].converter" % index).convert_detailed(
        endpoint, sample["body"], sample.get("ts"))
    return converted, [("%s %s" % (f.section, f.key), f.reason) for f in failures]
