"""checkingDeviceActivity end to end: a device that goes silent is disconnected on the
platform, its next message connects it again, and statistics count both."""
import json

from tests.support.gateway import write_config

MQTT = {"broker": {"host": "127.0.0.1", "port": 0, "clientId": "gw-activity", "security": {"type": "anonymous"}},
        "mapping": [{"topicFilter": "sensor/+/data", "subscriptionQos": 1,
                     "converter": {"type": "json", "deviceInfo": {"deviceNameExpressionSource": "message",
                                                                  "deviceNameExpression": "${serialNumber}"},
                                   "timeseries": [{"type": "integer", "key": "seq", "value": "${seq}"}]}}]}


def test_silent_device_is_disconnected_then_connected_with_its_next_data(tmp_path, relay_peers, gateways):
    config = json.loads(json.dumps(MQTT))
    config["broker"]["port"] = relay_peers.devices_broker.port
    path = write_config(str(tmp_path), relay_peers.platform_broker.port,
                        connectors=[{"name": "MQTT", "type": "mqtt", "configuration": "mqtt.json"}],
                        thingsboard={"statistics": {"enable": True, "statsSendPeriodInSeconds": 1},
                                     "checkingDeviceActivity": {"checkDeviceInactivity": True,
                                                                "inactivityTimeoutSeconds": 2,
                                                                "inactivityCheckPeriodSeconds": 0.2}},
                        files={"mqtt.json": config})
    gateways(path)
    platform, devices = relay_peers.platform, relay_peers.devices

    def sent(seq):
        return any(d == "Quiet" and v.get("seq") == seq for d, v, _ in platform.telemetry())

    for _ in range(40):  # until the connector has subscribed (clean session: earlier ones go nowhere)
        devices.publish("sensor/Quiet/data", {"serialNumber": "Quiet", "seq": 1})
        try:
            platform.wait_for(lambda m: sent(1), timeout=0.5)
            break
        except AssertionError:
            continue
    assert sent(1)
    platform.wait_topic("v1/gateway/disconnect", lambda b: b == {"device": "Quiet"}, timeout=15)
    connects_before = len([b for b in platform.on("v1/gateway/connect") if b["device"] == "Quiet"])
    devices.publish("sensor/Quiet/data", {"serialNumber": "Quiet", "seq": 2})
    platform.wait_for(lambda m: sent(2))
    platform.wait_for(lambda m: len([b for b in platform.on("v1/gateway/connect")
                                     if b["device"] == "Quiet"]) == connects_before + 1)
    platform.wait_for(lambda m: (platform.stat("devices_inactive_disconnected") or 0) >= 1 and
                      (platform.stat("devices_reactivated") or 0) >= 1)
