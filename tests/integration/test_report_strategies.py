"""Report strategies and device filtering end to end, in a gateway process: a pymodbus
server whose registers the test changes, the MQTT connector for pushed data (one broker
carries both the devices' topics and the platform's), the platform double."""
import json

import paho.mqtt.client as mqtt
import pytest

from tests.support.gateway import write_config
from tests.support.modbus_server import ModbusServer
from tests.support.waiting import wait_until


def tag(name, address, **extra):
    return dict({"tag": name, "type": "16int", "functionCode": 3, "address": address}, **extra)


def modbus_file(server):
    """Every level at once: connector ON_REPORT_PERIOD, devices ON_CHANGE or period, one
    datapoint ON_RECEIVED."""
    def slave(name, **extra):
        return dict({"deviceName": name, "deviceType": "meter", "unitId": 1, "pollPeriod": 100, "timeout": 1,
                     "type": "tcp", "host": "127.0.0.1", "port": server.port, "attributes": [], "timeseries": [],
                     "attributeUpdates": [], "rpc": []}, **extra)
    return {"name": "Modbus in its file", "reportStrategy": {"type": "ON_REPORT_PERIOD", "reportPeriod": 60000},
            "master": {"slaves": [
                slave("Changes", reportStrategy={"type": "ON_CHANGE"},
                      timeseries=[tag("level", 0), tag("pulse", 1, reportStrategy={"type": "ON_RECEIVED"})],
                      attributes=[tag("mode", 2)]),
                slave("Periodic", reportStrategy={"type": "ON_REPORT_PERIOD", "reportPeriod": 1000},
                      timeseries=[tag("level", 3)]),
                slave("Quiet", timeseries=[tag("level", 4)])]}}  # the connector's: once a minute


def values_of(platform, device, key):
    """[(ts, value)] of one telemetry key, in arrival order."""
    return [(ts, values[key]) for d, values, ts in platform.telemetry() if d == device and key in values]


def attributes_of(platform, device, key):
    return [body[device][key] for body in platform.on("v1/gateway/attributes")
            if isinstance(body, dict) and key in body.get(device, {})]


@pytest.fixture
def modbus_server():
    server = ModbusServer("tcp")
    yield server
    server.stop()


def test_every_level_against_a_polled_modbus_server(tmp_path, broker, platform, gateways, modbus_server):
    server = modbus_server
    server.set("hr", 0, [5, 1, 7, 40, 9])
    path = write_config(str(tmp_path), broker.port, files={"modbus.json": modbus_file(server)},
                        connectors=[{"name": "Modbus", "type": "modbus", "configuration": "modbus.json"}],
                        thingsboard={"reportStrategy": {"type": "ON_CHANGE"}})
    gateway = gateways(path)
    wait_until(lambda: values_of(platform, "Changes", "level") and values_of(platform, "Quiet", "level"), 20,
               "first values")
    for value in (6, 5):  # A -> B -> A: three sends in all
        polls = len(values_of(platform, "Changes", "pulse"))
        server.set("hr", 0, [value])
        wait_until(lambda: [v for _, v in values_of(platform, "Changes", "level")][-1:] == [value], 10,
                   "level %d" % value)
        wait_until(lambda: len(values_of(platform, "Changes", "pulse")) >= polls + 3, 10, "more polls")
    server.set("hr", 2, [8])
    wait_until(lambda: attributes_of(platform, "Changes", "mode") == [7, 8], 10, "the attribute's change")
    server.set("hr", 3, [41])
    wait_until(lambda: [v for _, v in values_of(platform, "Periodic", "level")][-1:] == [41], 10, "the period re-send")
    wait_until(lambda: len(values_of(platform, "Periodic", "level")) >= 4, 10, "four periods")

    assert [v for _, v in values_of(platform, "Changes", "level")] == [5, 6, 5]  # the device's ON_CHANGE
    assert len(values_of(platform, "Changes", "pulse")) >= 9  # its datapoint's ON_RECEIVED: every poll
    assert attributes_of(platform, "Changes", "mode") == [7, 8]  # attributes follow the same rules
    periodic = values_of(platform, "Periodic", "level")
    assert [v for _, v in periodic[:1]] == [40]  # the first value at once, then the latest each period
    gaps = [b[0] - a[0] for a, b in zip(periodic[1:], periodic[2:])]
    assert gaps and all(gap >= 500 for gap in gaps), periodic  # fresh timestamps, a period apart (not per poll)
    assert len(values_of(platform, "Quiet", "level")) == 1  # the connector's level (60 s) beats the general one
    code, _ = gateway.terminate()
    assert code == 0 and "Traceback" not in gateway.output()


MQTT_FILE = {
    "broker": {"name": "Devices", "host": "127.0.0.1", "port": 0, "clientId": "gw-report-test", "version": 4,
               "security": {"type": "anonymous"}},
    "mapping": [{"topicFilter": "plant/+/data", "subscriptionQos": 1, "reportStrategy": {"type": "ON_CHANGE"},
                 "converter": {"type": "json",
                               "deviceInfo": {"deviceNameExpressionSource": "topic",
                                              "deviceNameExpression": "(?<=plant/)(.*?)(?=/data)",
                                              "deviceProfileExpressionSource": "constant",
                                              "deviceProfileExpression": "sensor"},
                               "timeseries": [{"type": "string", "key": "state", "value": "${state}"},
                                              {"type": "integer", "key": "seq", "value": "${seq}"}]}}]}


def publish(port, messages):
    """Publish [(topic, body)] with QoS 1, in order."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="report-test-device")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic, body in messages:
            client.publish(topic, json.dumps(body), qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


def test_pushed_data_on_change_and_device_filtering_from_the_first_message(tmp_path, broker, platform, gateways):
    mqtt_file = json.loads(json.dumps(MQTT_FILE))
    mqtt_file["broker"]["port"] = broker.port
    mqtt_file["mapping"][0]["converter"]["timeseries"][1]["reportStrategy"] = {"type": "ON_RECEIVED"}
    path = write_config(str(tmp_path), broker.port, files={
        "mqtt.json": mqtt_file,
        "list.json": {"deny": {"MQTT": ["Test.*", "Lab [0-9]+"]}, "allow": {"MQTT": ["Test 7"]}}},
        connectors=[{"name": "MQTT", "type": "mqtt", "configuration": "mqtt.json"}],
        thingsboard={"deviceFiltering": {"enable": True, "filterFile": "list.json"}})
    gateway = gateways(path)
    # The connector subscribes after it connects: a probe that arrives says it is listening.
    wait_until(lambda: publish(broker.port, [("plant/Probe/data", {"state": "P", "seq": -1})])
               or platform.latest("Probe"), 20, "the connector's subscription")
    states = ["A", "A", "B", "B", "A"]
    messages = []
    for seq, state in enumerate(states):
        messages += [("plant/Test 7/data", {"state": state, "seq": seq}),  # denied: deny wins over allow
                     ("plant/Lab 12/data", {"state": state, "seq": seq}),  # denied
                     ("plant/Line 1/data", {"state": state, "seq": seq})]  # passes
    publish(broker.port, messages)
    wait_until(lambda: len(values_of(platform, "Line 1", "seq")) == len(states), 15, "every seq of Line 1")
    assert [v for _, v in values_of(platform, "Line 1", "state")] == ["A", "B", "A"]
    announced = [body.get("device") for body in platform.on("v1/gateway/connect")]
    assert announced == ["Probe", "Line 1"]
    sent_to = {device for device, _, _ in platform.telemetry()}
    assert sent_to == {"Probe", "Line 1"}
    out = gateway.output()
    assert out.count("Device Test 7 of connector MQTT is denied") == 1
    assert out.count("Device Lab 12 of connector MQTT is denied") == 1
    code, _ = gateway.terminate()
    assert code == 0 and "Traceback" not in gateway.output()
