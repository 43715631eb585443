"""The MQTT connector end to end: devices broker -> gateway -> platform double, and back."""
import json
import os
import time

import pytest

from tests.support.waiting import wait_until
from tests.support.devices import RelayPeers
from tests.support.gateway import GatewayProcess, ROOT, write_config

MQTT = {
    "broker": {"name": "Devices", "host": "127.0.0.1", "port": 0, "clientId": "gw-test", "version": 4,
               "security": {"type": "anonymous"}},
    "mapping": [
        {"topicFilter": "sensor/+/data", "subscriptionQos": 1,
         "converter": {"type": "json",
                       "deviceInfo": {"deviceNameExpressionSource": "topic",
                                      "deviceNameExpression": "(?<=sensor/)(.*?)(?=/data)",
                                      "deviceProfileExpressionSource": "constant",
                                      "deviceProfileExpression": "Thermometer"},
                       "attributes": [{"type": "string", "key": "model", "value": "${sensorModel}"}],
                       "timeseries": [{"type": "double", "key": "temperature", "value": "${temp}"}]}},
        {"topicFilter": "old/data", "subscriptionQos": 1,
         "converter": {"type": "json", "deviceNameJsonExpression": "${serialNumber}",
                       "deviceTypeJsonExpression": "${sensorType}",
                       "timeseries": [{"type": "integer", "key": "seq", "value": "${seq}"}]}},
        {"topicFilter": "raw/data", "subscriptionQos": 1,
         "converter": {"type": "bytes",
                       "deviceInfo": {"deviceNameExpressionSource": "message", "deviceNameExpression": "[0:4]"},
                       "timeseries": [{"type": "integer", "key": "value", "value": "[4:]"}]}},
        {"topicFilter": "custom/sensors/+", "subscriptionQos": 1,
         "converter": {"type": "custom", "extension": "CustomMqttUplinkConverter",
                       "extensionConfig": {"temperature": 2, "batteryLevel": 1}}},
    ],
    "requestsMapping": {
        "connectRequests": [{"topicFilter": "sensor/+/connect",
                             "deviceInfo": {"deviceNameExpressionSource": "topic",
                                            "deviceNameExpression": "(?<=sensor/)(.*?)(?=/connect)"}}],
        "disconnectRequests": [{"topicFilter": "sensor/+/disconnect",
                                "deviceInfo": {"deviceNameExpressionSource": "topic",
                                               "deviceNameExpression": "(?<=sensor/)(.*?)(?=/disconnect)"}}],
        "attributeRequests": [{"topicFilter": "sensor/attributes/request",
                               "deviceInfo": {"deviceNameExpressionSource": "message",
                                              "deviceNameExpression": "${device}"},
                               "attributeNameExpressionSource": "message", "attributeNameExpression": "${key}",
                               "topicExpression": "devices/${deviceName}/attrs/${attributeKey}",
                               "valueExpression": "${attributeValue}"}],
        "attributeUpdates": [{"deviceNameFilter": ".*", "attributeFilter": "relay|mode",
                              "topicExpression": "sensor/${deviceName}/set/${attributeKey}",
                              "valueExpression": "{\"${attributeKey}\":\"${attributeValue}\"}"}],
        "serverSideRpc": [
            {"type": "twoWay", "deviceNameFilter": ".*", "methodFilter": "getRelay",
             "requestTopicExpression": "sensor/${deviceName}/request/${methodName}/${requestId}",
             "responseTopicExpression": "sensor/${deviceName}/response/${methodName}/${requestId}",
             "responseTimeout": 10000, "valueExpression": "${params}"},
            {"type": "twoWay", "deviceNameFilter": ".*", "methodFilter": "slow",
             "requestTopicExpression": "sensor/${deviceName}/request/slow/${requestId}",
             "responseTopicExpression": "sensor/${deviceName}/response/slow/${requestId}",
             "responseTimeout": 500, "valueExpression": "${params}"},
            {"type": "oneWay", "deviceNameFilter": ".*", "methodFilter": "setRelay",
             "requestTopicExpression": "sensor/${deviceName}/request/${methodName}", "valueExpression": "${params}"},
        ],
    },
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("mqtt"))
    peers = RelayPeers(folder, ("#",))
    platform, devices = peers.platform, peers.devices
    platform.attributes["SN-7"] = {"targetTemp": 22.5}
    config = json.loads(json.dumps(MQTT))
    config["broker"]["port"] = peers.devices_broker.port
    path = write_config(folder, peers.platform_broker.port,
                        connectors=[{"name": "MQTT Devices", "type": "mqtt", "configuration": "mqtt.json"}],
                        thingsboard={"statistics": {"enable": True, "statsSendPeriodInSeconds": 1}},
                        files={"mqtt.json": config})
    gateway = GatewayProcess(path, env={"TB_GW_EXTENSIONS_DIR": os.path.join(ROOT, "extensions")})
    try:
        platform.wait_topic("v1/devices/me/telemetry", lambda b: b["values"].get("MQTT Devices_state") == "running")
        # The connector subscribes right after it starts: a probe until one arrives.
        wait_until(lambda: devices.publish("old/data", {"serialNumber": "PROBE", "sensorType": "probe", "seq": 0})
                   or platform.latest("PROBE"), 20, "the connector's subscription", interval=0.2)
        yield platform, devices, gateway
    finally:
        gateway.kill()
        peers.close()


def values_of(platform, device):
    return [v for d, v, _ in platform.telemetry() if d == device]


def test_mapping_by_topic_new_format(world):
    platform, devices, _ = world
    devices.publish("sensor/SN-7/data", {"sensorModel": "T1", "temp": 21.5})
    platform.wait_for(lambda m: {"temperature": 21.5} in values_of(platform, "SN-7"))
    assert platform.wait_topic("v1/gateway/attributes", lambda b: "SN-7" in b and "connectorName" not in b["SN-7"]) == {"SN-7": {"model": "T1"}}
    assert {"device": "SN-7", "type": "Thermometer"} in platform.on("v1/gateway/connect")


def test_mapping_old_format(world):
    platform, devices, _ = world
    devices.publish("old/data", {"serialNumber": "OLD-1", "sensorType": "meter", "seq": "5"})
    platform.wait_for(lambda m: {"seq": 5} in values_of(platform, "OLD-1"))
    assert {"device": "OLD-1", "type": "meter"} in platform.on("v1/gateway/connect")


def test_bytes_and_custom_converters(world):
    platform, devices, _ = world
    devices.publish("raw/data", b"RAW1042")
    devices.publish("custom/sensors/CUST-1", bytes([0x01, 0x02, 0x55]))
    platform.wait_for(lambda m: {"value": 42} in values_of(platform, "RAW1"))
    platform.wait_for(lambda m: {"temperature": 258, "batteryLevel": 85} in values_of(platform, "CUST-1"))
    assert {"value": 42} in values_of(platform, "RAW1")


def test_malformed_payloads_are_counted_and_survived(world):
    platform, devices, _ = world
    devices.publish("old/data", b"{not json")
    devices.publish("old/data", b"\xff\xfe\xfd")
    devices.publish("old/data", {"serialNumber": "BAD", "sensorType": "t", "seq": "many"})
    devices.publish("old/data", b"[" + b"1," * 500000 + b"1]")     # 1 MB, valid JSON, nothing to map
    devices.publish("old/data", {"serialNumber": "GOOD-1", "sensorType": "t", "seq": 1})
    platform.wait_for(lambda m: {"seq": 1} in values_of(platform, "GOOD-1"))
    stats = platform.wait_topic("v1/devices/me/telemetry",
                                lambda b: b["values"].get("MQTT Devices_failures_malformed_json", 0) >= 2 and
                                "MQTT Devices_failures_timeseries:seq" in b["values"])["values"]
    assert stats["MQTT Devices_failures_malformed_json"] == 2
    assert stats["MQTT Devices_state"] == "running"


def test_connect_and_disconnect_requests(world):
    platform, devices, _ = world
    devices.publish("sensor/NEW-1/connect", b"")
    platform.wait_topic("v1/gateway/connect", lambda b: b["device"] == "NEW-1")
    devices.publish("sensor/NEW-1/disconnect", b"")
    assert platform.wait_topic("v1/gateway/disconnect", lambda b: b["device"] == "NEW-1") == {"device": "NEW-1"}


def test_attribute_request_round_trip(world):
    platform, devices, _ = world
    devices.publish("sensor/attributes/request", {"device": "SN-7", "key": "targetTemp"})
    assert devices.wait_topic("devices/SN-7/attrs/targetTemp") == b"22.5"


def test_attribute_update_reaches_the_device(world):
    platform, devices, _ = world
    devices.publish("sensor/SN-7/data", {"sensorModel": "T1", "temp": 1})
    platform.wait_topic("v1/gateway/connect", lambda b: b["device"] == "SN-7")
    platform.shared_attributes("SN-7", {"relay": True, "ignored": 1})
    assert json.loads(devices.wait_topic("sensor/SN-7/set/relay")) == {"relay": "true"}
    assert not [t for t, _ in devices.messages if t.endswith("/set/ignored")]


def test_two_way_rpc(world):
    platform, devices, _ = world
    devices.responders["sensor/+/request/getRelay/+"] = lambda topic, payload: (
        topic.replace("/request/", "/response/"), json.dumps({"relay": "on", "asked": json.loads(payload)}))
    request_id = platform.device_rpc("SN-7", "getRelay", {"pin": 3})
    reply = platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == request_id and "data" in b
                                and "method" not in b["data"])
    assert reply["data"] == {"relay": "on", "asked": {"pin": 3}}


def test_two_way_rpc_timeout_gets_an_error_reply(world):
    platform, _, _ = world
    request_id = platform.device_rpc("SN-7", "slow", {})
    reply = platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == request_id and "error" in b.get("data", {}))
    assert "timeout" in reply["data"]["error"]


def test_one_way_rpc(world):
    platform, devices, _ = world
    request_id = platform.device_rpc("SN-7", "setRelay", {"on": True})
    assert json.loads(devices.wait_topic("sensor/SN-7/request/setRelay")) == {"on": True}
    platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == request_id and b.get("data") == {"success": True})


def test_mqtt5_with_a_shared_subscription(tmp_path, relay_peers, gateways):
    platform, devices = relay_peers.platform, relay_peers.devices
    config = {"broker": {"host": "127.0.0.1", "port": relay_peers.devices_broker.port, "clientId": "gw-v5",
                         "version": 5, "cleanSession": False, "sessionExpiryInterval": 60,
                         "security": {"type": "anonymous"}},
              "mapping": [{"topicFilter": "$share/gateways/v5/+/data", "subscriptionQos": 1,
                           "converter": {"type": "json", "deviceInfo": {"deviceNameExpressionSource": "topic",
                                                                        "deviceNameExpression": "(?<=v5/)[^/]+"},
                                         "timeseries": [{"type": "integer", "key": "n", "value": "${n}"}]}}]}
    path = write_config(str(tmp_path), relay_peers.platform_broker.port,
                        connectors=[{"name": "MQTT5", "type": "mqtt", "configuration": "mqtt.json"}],
                        files={"mqtt.json": config})
    gateways(path)
    wait_until(lambda: devices.publish("v5/V5-1/data", {"n": 7}) or platform.latest("V5-1"), 20,
               "data over MQTT 5", interval=0.3)
    assert platform.latest("V5-1") == {"n": 7}
    log = relay_peers.devices_broker.log()
    assert "gw-v5" in log and "p5" in log   # protocol version 5


def test_hostile_payloads_among_good_ones(world):
    """Names ThingsBoard cannot take never reach it, nothing prints a traceback, and
    every good message among the bad ones arrives."""
    platform, devices, gateway = world
    deep = b"[" * 100000 + b"]" * 100000
    hostile = [
        {"serialNumber": {"nested": [1, 2]}, "sensorType": "t", "seq": 1},   # a name that is an object
        {"serialNumber": "N" * 5000, "sensorType": "t", "seq": 2},           # 5,000 characters
        {"serialNumber": "   ", "sensorType": "t", "seq": 3},                # blank
        {"serialNumber": "TYPE-OBJ", "sensorType": {"a": 1}, "seq": 4},      # a type that is an object
        b'{"serialNumber": "HUGE", "sensorType": "t", "seq": 1e400}',          # beyond the double range
        b'{"serialNumber": "NAN", "sensorType": "t", "seq": NaN}',             # not JSON for ThingsBoard
        b'{"serialNumber": "DEEP", "sensorType": "t", "seq": ' + deep + b"}",  # nesting too deep
        b"\xc3\x28\xa0\xa1",                                                    # invalid UTF-8
    ]
    for n, payload in enumerate(hostile):
        devices.publish("old/data", payload)
        devices.publish("old/data", {"serialNumber": "OK-%d" % n, "sensorType": "t", "seq": n})
    for n in range(len(hostile)):
        platform.wait_for(lambda m: {"seq": n} in values_of(platform, "OK-%d" % n))
    names = {device for device, _, _ in platform.telemetry()}
    assert not [name for name in names if len(name) > 255 or not name.strip() or name.startswith("{")], names
    assert "HUGE" not in names and "NAN" not in names
    connects = [b["device"] for b in platform.on("v1/gateway/connect")]
    assert not [name for name in connects if not isinstance(name, str) or len(name) > 255 or name.startswith("{")]
    assert "Traceback" not in gateway.output()
