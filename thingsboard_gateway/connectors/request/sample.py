"""`check --connector FILE --sample S` and the case folders for the request connector: the
uplink converter on a recorded sample (apart from uplink.py, which must not import the
config module)."""
from typing import Any, List, Tuple

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.connectors.request.config import load
from thingsboard_gateway.connectors.request.uplink import items, unpack


def convert_sample(config, shown, sample):
    # type: (Any, str, Any) -> Tuple[Any, List[Tuple[str, str]]]
    """For `check --sample` and the case folders: {"mapping": index (default 0),
    "response": JSON, "subResponses": [{name: JSON} per item], "ts": ms} -> (converted
    list, failures)."""
    from thingsboard_gateway.connectors.http.uplink import json_converter
    from thingsboard_gateway.conversion.expression import compile_template
    mappings = load(config, shown)["mapping"]
    if not isinstance(sample, dict) or "response" not in sample:
        raise ConfigError("sample", "response", "expected {\"mapping\": index, \"response\": the polled JSON}")
    index = sample.get("mapping", 0)
    if not isinstance(index, int) or not 0 <= index < len(mappings):
        raise ConfigError("sample", "mapping", "expected a mapping index 0-%d" % (len(mappings) - 1))
    mapping = mappings[index]
    if mapping["converter"]["type"] != "json":
        raise ConfigError(shown, "mapping[%d].converter" % index, "a custom converter cannot be dry-run")
    data = sample["response"]
    if mapping["dataUnpackExpression"]:
        try:
            data = unpack(data, compile_template(mapping["dataUnpackExpression"], shown,
                                                 "mapping[%d].dataUnpackExpression" % index))
        except ValueError as e:
            return [], [("dataUnpackExpression", str(e))]
    data = items(data)
    for item, sub in zip(data, sample.get("subResponses") or []):
        if isinstance(item, dict) and isinstance(sub, dict):
            item.update(sub)
    converted, failures = json_converter(mapping["converter"], shown, "mapping[%d].converter" % index
                                         ).convert_detailed(mapping["url"], data, sample.get("ts"))
    return converted, [("%s %s" % (f.section, f.key), f.reason) for f in failures]
