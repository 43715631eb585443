"""Connector converters, data-driven: each folder under tests/cases/<kind>/ (modbus,
opcua, serial, socket, rest, request, ble) is a case. config.json is the connector file; then either
  sample.json (what was read) -> expected.json {"converted", "failures"}: the uplink
    converter, through the functions `thingsboard-gateway check --sample` runs;
  downlink.json (an RPC or attribute write) -> expected.json {"requests"} (Modbus) or
    {"value"} / {"arguments"} (OPC-UA): the downlink converter;
or error.txt with the one-line error instead of expected.json."""
import json
import os
import sys

import pytest

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.connectors.dry_run import SAMPLE_CONVERTERS, sample_converter

CASES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "cases")


def cases():
    return [(kind, name) for kind in sorted(SAMPLE_CONVERTERS) if os.path.isdir(os.path.join(CASES, kind))
            for name in sorted(os.listdir(os.path.join(CASES, kind)))]


def downlink(kind, config, case):
    if kind == "modbus":
        from thingsboard_gateway.connectors.modbus.connector import ModbusConnector
        from thingsboard_gateway.connectors.modbus.downlink import requests_for
        slave = ModbusConnector.load_config(config, "config.json")["master"]["slaves"][0]
        tag = next(t for t in slave["rpc"] + slave["attributeUpdates"] if t["tag"] == case["tag"])
        return {"requests": [list(r) for r in requests_for(tag, case["value"], slave)]}
    from thingsboard_gateway.connectors.opcua.connector import OpcUaConnector
    from thingsboard_gateway.connectors.opcua.downlink import cast_for, method_arguments
    if "variant" in case:
        return {"value": cast_for(case["variant"], case["value"])}
    mapping = OpcUaConnector.load_config(config, "config.json")["mapping"][0]
    entry = next(m for m in mapping["rpc_methods"] if m["method"] == case["method"])
    return {"arguments": [list(a) for a in method_arguments(entry, case.get("params"))]}


def run_case(kind, name):
    folder = os.path.join(CASES, kind, name)
    config = json.load(open(os.path.join(folder, "config.json")))
    if os.path.exists(os.path.join(folder, "downlink.json")):
        return downlink(kind, config, json.load(open(os.path.join(folder, "downlink.json"))))
    sample = json.load(open(os.path.join(folder, "sample.json")))
    converted, failures = sample_converter(kind)(config, "config.json", sample)
    return {"converted": converted, "failures": [list(f) for f in failures]}


@pytest.mark.parametrize("kind,name", cases())
def test_converter_case(kind, name):
    folder = os.path.join(CASES, kind, name)
    error_file = os.path.join(folder, "error.txt")
    if os.path.exists(error_file):
        with pytest.raises((ConfigError, ValueError)) as info:  # a bad file or sample; a value the type cannot hold
            run_case(kind, name)
        assert str(info.value) == open(error_file).read().strip()
        return
    assert run_case(kind, name) == json.load(open(os.path.join(folder, "expected.json")))


if __name__ == "__main__":  # python -m tests.unit.test_connector_cases KIND NAME: print a case's result
    print(json.dumps(run_case(sys.argv[1], sys.argv[2]), indent=2))
