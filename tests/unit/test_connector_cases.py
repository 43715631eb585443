"""Modbus and OPC-UA uplink converters, data-driven: each folder under tests/cases/modbus
and tests/cases/opcua is a case (config.json: the connector file, sample.json: what was
read, and expected.json: {"converted", "failures"} or error.txt: the one-line error).
The same functions run `thingsboard-gateway check --connector FILE --sample FILE`."""
import json
import os
import sys

import pytest

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.connectors.dry_run import convert_modbus_sample, convert_opcua_sample

CASES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "cases")
CONVERT = {"modbus": convert_modbus_sample, "opcua": convert_opcua_sample}


def cases():
    return [(kind, name) for kind in sorted(CONVERT) for name in sorted(os.listdir(os.path.join(CASES, kind)))]


def run_case(kind, name):
    folder = os.path.join(CASES, kind, name)
    config = json.load(open(os.path.join(folder, "config.json")))
    sample = json.load(open(os.path.join(folder, "sample.json")))
    converted, failures = CONVERT[kind](config, "config.json", sample)
    return {"converted": converted, "failures": [list(f) for f in failures]}


@pytest.mark.parametrize("kind,name", cases())
def test_converter_case(kind, name):
    folder = os.path.join(CASES, kind, name)
    error_file = os.path.join(folder, "error.txt")
    if os.path.exists(error_file):
        with pytest.raises(ConfigError) as info:
            run_case(kind, name)
        assert str(info.value) == open(error_file).read().strip()
        return
    assert run_case(kind, name) == json.load(open(os.path.join(folder, "expected.json")))


if __name__ == "__main__":  # python -m tests.unit.test_connector_cases KIND NAME: print a case's result
    print(json.dumps(run_case(sys.argv[1], sys.argv[2]), indent=2))
