"""Connector converters, data-driven, the one runner of tests/cases/: each folder under
tests/cases/<kind>/ (mqtt, modbus, opcua, serial, socket, rest, request, ble, snmp) is a case.
config.json is the connector file (for mqtt: one mapping's converter); then either
  sample.json (what was read) -> expected.json {"converted", "failures"}: the uplink
    converter, through the functions `thingsboard-gateway check --sample` runs
    (mqtt: topic.txt and message.json or message.bin, converted at ts 1000);
  downlink.json (an RPC or attribute write) -> expected.json: what goes to the device:
    {"requests"} (Modbus), {"value"} / {"arguments"} (OPC-UA), {"text", "hex"} (serial,
    socket, BLE), {"method", "url", "body"} (REST and request's outgoing HTTP request);
or error.txt with the one-line error instead of expected.json."""
import json
import os
import sys

import pytest

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.connectors.dry_run import SAMPLE_CONVERTERS, sample_converter

CASES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "cases")


def cases():
    return [(kind, name) for kind in sorted(list(SAMPLE_CONVERTERS) + ["mqtt"])
            if os.path.isdir(os.path.join(CASES, kind)) for name in sorted(os.listdir(os.path.join(CASES, kind)))]


def mqtt_case(folder, config):
    from thingsboard_gateway.connectors.mqtt.uplink import BytesUplinkConverter
    from thingsboard_gateway.conversion.mapped import JsonUplinkConverter
    topic = open(os.path.join(folder, "topic.txt")).read().strip()
    if os.path.exists(os.path.join(folder, "message.bin")):
        message = open(os.path.join(folder, "message.bin"), "rb").read()
    else:
        message = json.load(open(os.path.join(folder, "message.json")))
    cls = BytesUplinkConverter if config.get("type") == "bytes" else JsonUplinkConverter
    converted, failures = cls(config, "mqtt.json", "converter").convert_detailed(topic, message, now_ms=1000)
    return {"converted": converted, "failures": [list(f) for f in failures]}


def sent(data):
    # type: (bytes) -> dict
    return {"text": data.decode("utf-8", "replace"), "hex": data.hex()}


def device_downlink(kind, config, case):
    """serial, socket, BLE: the bytes an RPC or attribute write sends to the device."""
    if kind == "ble":
        from thingsboard_gateway.connectors.ble.downlink import to_bytes
        return sent(to_bytes(case["value"]))
    name = case["device"]
    if kind == "serial":
        from thingsboard_gateway.connectors.serial.config import load
        from thingsboard_gateway.connectors.serial.downlink import attribute_bytes, rpc_bytes
        device = next(d for d in load(config, "config.json")["devices"] if d["name"] == name)
        if "rpc" in case:
            entry = next(e for e in device["serverSideRpc"] if e["method"] == case["rpc"]["method"])
            return sent(rpc_bytes(entry, device, case["rpc"]["method"], case["rpc"].get("params")))
        key = case["attribute"]["key"]
        entry = next(e for e in device["attributeUpdates"] if key in (e.get("attributeOnPlatform"),
                                                                      e.get("attributeOnThingsBoard")))
        return sent(attribute_bytes(entry, key, case["attribute"]["value"]))
    from thingsboard_gateway.connectors.socket.config import load
    from thingsboard_gateway.connectors.socket.downlink import device_bytes
    device = next(d for d in load(config, "config.json")["devices"] if d["deviceName"] == name)
    if "rpc" in case:
        entry = next(e for e in device["serverSideRpc"] if e["methodRPC"] == case["rpc"]["method"])
        return sent(device_bytes(case["rpc"].get("params"), entry["encoding"]))
    entry = next(e for e in device["attributeUpdates"] if e["attributeOnThingsBoard"] == case["attribute"]["key"])
    return sent(device_bytes(case["attribute"]["value"], entry["encoding"]))


def http_downlink(kind, config, case):
    """REST and request: the outgoing HTTP request of an RPC or attribute update."""
    if kind == "rest":
        from thingsboard_gateway.connectors.rest.connector import RestConnector, compile_requests
        outgoing = compile_requests(RestConnector.load_config(config, "config.json"), "config.json")[1]
    else:
        from thingsboard_gateway.connectors.request.connector import RequestConnector, outgoing_requests
        outgoing = outgoing_requests(RequestConnector.load_config(config, "config.json"), "config.json")
    if "rpc" in case:
        rpc = case["rpc"]
        entry = next(e for e in outgoing["serverSideRpc"] if e.matches(rpc["device"], rpc["method"]))
        values = {"deviceName": rpc["device"], "methodName": rpc["method"], "requestId": rpc.get("id"),
                  "params": rpc.get("params")}
    else:
        update = case["attribute"]
        entry = next(e for e in outgoing["attributeUpdates"] if e.matches(update["device"], update["key"]))
        values = {"deviceName": update["device"], "attributeKey": update["key"], "attributeValue": update["value"]}
    url, body = entry.render(values)
    return {"method": entry.method, "url": url, "body": body.decode("utf-8") if body is not None else None}


def downlink(kind, config, case):
    if kind in ("serial", "socket", "ble"):
        return device_downlink(kind, config, case)
    if kind in ("rest", "request"):
        return http_downlink(kind, config, case)
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
    if kind == "mqtt":
        return mqtt_case(folder, config)
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
        with pytest.raises((ConfigError, ValueError, UnicodeError)) as info:  # a bad file or sample; a value the type cannot hold
            run_case(kind, name)
        assert str(info.value) == open(error_file).read().strip()
        return
    assert run_case(kind, name) == json.load(open(os.path.join(folder, "expected.json")))


if __name__ == "__main__":  # python -m tests.unit.test_connector_cases KIND NAME: print a case's result
    print(json.dumps(run_case(sys.argv[1], sys.argv[2]), indent=2))
