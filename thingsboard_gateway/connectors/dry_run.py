"""`thingsboard-gateway check --connector FILE --sample FILE [--topic T]`.

Runs a connector file's uplink converter on a recorded sample and prints exactly what
would be sent, and every key that found nothing. The connector type comes from the
file's keys (connector_kind). Samples (the other connectors' formats are in their
READMEs and their `convert_sample` functions):
  MQTT     the payload as it arrived, with --topic
  Modbus   {"deviceName": slave (default: the first), "ts": ms,
            "reads": [{"functionCode": 3, "address": 0, "values": [215, 42]}, ...]}
  OPC-UA   {"mapping": index (default 0), "deviceName", "deviceType", "ts": ms,
            "nodes": {"${Temperature}": 21.5, ...}, "timestamps": {expression: ms}}
Exit 0 when every key was found, 1 when some key found nothing, 2 for bad input.
"""
import json
import os
import sys
from typing import Any, List, Optional, Tuple

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.loader import read_json
from thingsboard_gateway.conversion.report import DeviceStrategy

EXIT_OK, EXIT_MISSING, EXIT_BAD = 0, 1, 2


def _shown(value):
    # type: (Any) -> str
    """Converted data as printed: JSON, with the report strategies a converter hands over
    (conversion/report.DeviceStrategy) as what they set."""
    def plain(item):
        if isinstance(item, DeviceStrategy):
            return item.as_json()
        raise TypeError("%s is not JSON" % type(item).__name__)
    return json.dumps(value, indent=2, default=plain)


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
        print(_shown(mapping.converter.convert(topic, payload)))
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
    print(_shown(converted))
    missing = [f for f in failures]
    if missing:
        print("\n%d key(s) found nothing or could not be cast:" % len(missing))
        for f in missing:
            print("  %s %s: %s (expression %s)" % (f.section, f.key, f.reason, f.expression))
        return EXIT_MISSING
    return EXIT_OK


def _print_result(converted, failures):
    # type: (Any, List[Any]) -> int
    print("converted:")
    print(_shown(converted))
    if failures:
        print("\n%d key(s) found nothing or could not be decoded:" % len(failures))
        for key, reason in failures:
            print("  %s: %s" % (key, reason))
        return EXIT_MISSING
    return EXIT_OK


def convert_modbus_sample(config, shown, sample):
    # type: (Any, str, Any) -> Tuple[Any, List[Tuple[str, str]]]
    """(converted, failures) of the Modbus uplink converter on a recorded sample (pure)."""
    from thingsboard_gateway.connectors.modbus.connector import ModbusConnector
    from thingsboard_gateway.connectors.modbus.uplink import ModbusUplinkConverter
    config = ModbusConnector.load_config(config, shown)
    slaves = config["master"]["slaves"]
    if isinstance(sample, dict) and isinstance(sample.get("served"), dict):
        from thingsboard_gateway.connectors.modbus.served import dry_run as served_dry_run
        if not config.get("slave"):
            raise ConfigError("sample", "served", "%s has no `slave` section to serve" % shown)
        return served_dry_run(config["slave"], sample["served"])
    if not isinstance(sample, dict) or not isinstance(sample.get("reads"), list):
        raise ConfigError("sample", "reads", "expected a list of {functionCode, address, values} (or {\"served\": "
                                             "{\"writes\": {tag: value}}} for the `slave` section)")
    name = sample.get("deviceName") or (slaves[0]["deviceName"] if slaves else None)
    slave = next((s for s in slaves if s["deviceName"] == name), None)
    if slave is None:
        raise ConfigError("sample", "deviceName", "no slave named %r in %s" % (name, shown))
    try:
        return ModbusUplinkConverter(slave).convert_detailed(sample)
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError("sample", "reads", "expected {functionCode, address, values} entries (%s)" % e)


def convert_opcua_sample(config, shown, sample):
    # type: (Any, str, Any) -> Tuple[Any, List[Tuple[str, str]]]
    """(converted, failures) of the OPC-UA uplink converter on a recorded sample (pure)."""
    from thingsboard_gateway.connectors.opcua.connector import OpcUaConnector
    from thingsboard_gateway.connectors.opcua.uplink import OpcUaUplinkConverter
    config = OpcUaConnector.load_config(config, shown)
    if not isinstance(sample, dict) or not isinstance(sample.get("nodes", {}), dict):
        raise ConfigError("sample", "nodes", "expected an object of expression -> value")
    index = sample.get("mapping", 0)
    if not isinstance(index, int) or not 0 <= index < len(config["mapping"]):
        raise ConfigError("sample", "mapping", "expected a mapping index 0-%d" % (len(config["mapping"]) - 1))
    mapping = config["mapping"][index]
    info = mapping["deviceInfo"]
    name = sample.get("deviceName") or (info.get("deviceNameExpression")
                                        if info.get("deviceNameExpressionSource", "constant") == "constant" else None)
    if not name:
        raise ConfigError("sample", "deviceName", "mapping[%d] takes the device name from a node: give deviceName"
                          % index)
    values, failures = OpcUaUplinkConverter.values_from_sample(mapping, sample)
    data = {"deviceName": name, "deviceType": sample.get("deviceType") or info.get("deviceProfileExpression"),
            "values": values, "ts": sample.get("ts", 0)}
    return OpcUaUplinkConverter().convert(mapping, data), failures


# kind -> "module:function(config, shown file name, sample) -> (converted, failures)"
SAMPLE_CONVERTERS = {
    "modbus": "thingsboard_gateway.connectors.dry_run:convert_modbus_sample",
    "opcua": "thingsboard_gateway.connectors.dry_run:convert_opcua_sample",
    "serial": "thingsboard_gateway.connectors.serial.sample:convert_sample",
    "socket": "thingsboard_gateway.connectors.socket.sample:convert_sample",
    "rest": "thingsboard_gateway.connectors.rest.sample:convert_sample",
    "request": "thingsboard_gateway.connectors.request.sample:convert_sample",
    "ble": "thingsboard_gateway.connectors.ble.sample:convert_sample",
    "snmp": "thingsboard_gateway.connectors.snmp.sample:convert_sample",
}


def sample_converter(kind):
    # type: (str) -> Any
    import importlib
    module, function = SAMPLE_CONVERTERS[kind].split(":")
    return getattr(importlib.import_module(module), function)


def connector_kind(config, shown):
    # type: (Any, str) -> str
    """Which connector a file configures, from its keys."""
    if isinstance(config, dict):
        devices = config.get("devices") if isinstance(config.get("devices"), list) else []
        first = devices[0] if devices and isinstance(devices[0], dict) else {}
        server = config.get("server") if isinstance(config.get("server"), dict) else {}
        if "broker" in config:
            return "mqtt"
        if "master" in config:
            return "modbus"
        if "socket" in config:
            return "socket"
        if "MACAddress" in first:
            return "ble"
        if "ip" in first and ("community" in first or "attributes" in first or "telemetry" in first):
            return "snmp"
        if "port" in first:
            return "serial"
        if "url" in server:
            return "opcua"
        if server and "mapping" in config:
            return "rest"
        if "host" in config and "mapping" in config:
            return "request"
    raise ConfigError(shown, "", "cannot tell the connector type: expected \"broker\" (MQTT), \"master\" "
                                 "(Modbus), \"server\" with \"url\" (OPC-UA) or with \"host\" (REST), "
                                 "\"socket\", \"host\" + \"mapping\" (request), devices with \"port\" "
                                 "(serial) or \"MACAddress\" (BLE) or \"ip\" (SNMP)")


def _read_sample_json(sample_path, payload):
    # type: (str, bytes) -> Any
    try:
        return json.loads(payload)
    except ValueError as e:
        raise ConfigError(os.path.basename(sample_path), "", "the sample is not JSON: %s" % e)


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
        kind = connector_kind(config, shown)
        if kind == "mqtt":
            return _mqtt(config, shown, topic, payload)
        return _print_result(*sample_converter(kind)(config, shown, _read_sample_json(sample_path, payload)))
    except ConfigError as e:
        sys.stderr.write("error: %s\n" % e)
        return EXIT_BAD
