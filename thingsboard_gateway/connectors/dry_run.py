"""`thingsboard-gateway check --connector mqtt.json --topic T --sample payload.json`.

Runs a connector file's converter on a recorded message and prints the converted result,
each configured key with its expression and value, and every key that found nothing.
Exit 0 when every key was found, 1 when some key found nothing, 2 for bad input.
"""
import json
import os
import sys
from typing import Any, List, Optional

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.loader import read_json

EXIT_OK, EXIT_MISSING, EXIT_BAD = 0, 1, 2


def _mqtt(config, shown, topic, payload):
    # type: (Any, str, str, bytes) -> int
    import paho.mqtt.client as mqtt
    from thingsboard_gateway.connectors.mqtt.connector import Mapping, MqttConnector, match_filter
    config = MqttConnector.load_config(config, shown)
    if not topic:
        raise ConfigError(shown, "", "--topic is needed to choose the mapping")
    for index, entry in enumerate(config["mapping"]):
        if mqtt.topic_matches_sub(match_filter(entry["topicFilter"]), topic):
            mapping = Mapping(entry, index, shown)
            break
    else:
        print("No mapping of %s matches topic %s (topicFilters: %s)" % (
            shown, topic, ", ".join(m["topicFilter"] for m in config["mapping"])))
        return EXIT_MISSING
    print("mapping[%d] topicFilter %s, converter %s" % (index, mapping.topic_filter, mapping.kind))
    if mapping.kind == "custom":
        print(json.dumps(mapping.converter.convert(topic, payload), indent=2))
        return EXIT_OK
    data = payload  # type: Any
    if mapping.kind == "json":
        try:
            data = json.loads(payload)
        except ValueError as e:
            print("The sample is not JSON: %s" % e)
            return EXIT_MISSING
    converted, failures = mapping.converter.convert_detailed(topic, data)
    rows = mapping.converter.explain(topic, data)
    width = max(len("%s %s" % (r[0], r[1])) for r in rows) if rows else 0
    print("\nkeys:")
    for section, key, expression, value, problem in rows:
        label = "%s %s" % (section, key)
        shown_value = "NOT FOUND: %s" % problem if problem else json.dumps(value)
        print("  %-*s  %-30s -> %s" % (width, label, expression, shown_value))
    print("\nconverted:")
    print(json.dumps(converted, indent=2))
    missing = [f for f in failures]
    if missing:
        print("\n%d key(s) found nothing or could not be cast:" % len(missing))
        for f in missing:
            print("  %s %s: %s (expression %s)" % (f.section, f.key, f.reason, f.expression))
        return EXIT_MISSING
    return EXIT_OK


def dry_run(connector_path, topic, sample_path):
    # type: (str, Optional[str], Optional[str]) -> int
    shown = os.path.basename(connector_path)
    try:
        config = read_json(connector_path, shown)
        if not sample_path:
            raise ConfigError(shown, "", "--sample FILE is needed")
        try:
            with open(sample_path, "rb") as f:
                payload = f.read()
        except OSError as e:
            raise ConfigError(sample_path, "", "cannot read the sample: %s" % (e.strerror or e))
        if isinstance(config, dict) and "broker" in config:
            return _mqtt(config, shown, topic, payload)
        raise ConfigError(shown, "", "dry runs are supported for MQTT connector files (with \"broker\") so far")
    except ConfigError as e:
        sys.stderr.write("error: %s\n" % e)
        return EXIT_BAD
