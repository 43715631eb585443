"""A connector added or changed while the gateway runs (from ThingsBoard, by hot reload of
its file, by SIGHUP) gets its connector-level report strategy and the device-filter rules
that name it at once, without a restart: the ConnectorSet tells the data policy of every
change. End to end: a gateway process, an MQTT connector on a real devices broker, the
platform double."""
import json
import os
import signal

import pytest

from tests.support.broker import Mosquitto
from tests.support.devices import DeviceClient
from tests.support.gateway import write_config
from tests.support.waiting import wait_until

FILTER = {"deny": {"Belt": ["Hidden.*"]}}  # by its tb_gateway.json name; the file names itself otherwise


def belt_file(port, own_name, strategy=None):
    content = {"name": own_name,
               "broker": {"host": "127.0.0.1", "port": port, "clientId": "belt-%s" % own_name, "version": 4,
                          "security": {"type": "anonymous"}},
               "mapping": [{"topicFilter": "belt/+/data", "converter": {
                   "type": "json", "deviceNameJsonExpression": "${serialNumber}",
                   "timeseries": [{"type": "integer", "key": "t", "value": "${t}"}]}}]}
    if strategy:
        content["reportStrategy"] = {"type": strategy}
    return content


@pytest.fixture
def devices_broker(tmp_path):
    broker = Mosquitto(str(tmp_path), "devices").start()
    yield broker
    broker.stop()


def values_of(platform, device):
    return [v["t"] for d, v, _ in platform.telemetry() if d == device]


def check_rules_apply(platform, devices, probe):
    """Hidden is denied by a rule that names the connector by its tb_gateway.json name while
    its file calls it otherwise (an alias); Shown repeats values that ON_CHANGE holds back."""
    wait_until(lambda: devices.publish("belt/%s/data" % probe, {"serialNumber": probe, "t": 0})
               or values_of(platform, probe), 20, "the changed connector's subscription", interval=0.3)
    for device, value in [("Hidden 1", 1), ("Shown", 1), ("Shown", 1), ("Shown", 2), ("Shown", 2),
                          ("Shown", 3), ("Hidden 1", 2)]:
        devices.publish("belt/%s/data" % device, {"serialNumber": device, "t": value})
    platform.wait_for(lambda m: 3 in values_of(platform, "Shown"))
    assert values_of(platform, "Shown") == [1, 2, 3]
    assert values_of(platform, "Hidden 1") == []


@pytest.mark.parametrize("route", ["remote", "hot reload", "SIGHUP"])
def test_a_changed_connector_meets_its_strategy_and_filter_at_once(route, tmp_path, platform, broker, devices_broker,
                                                                    gateways):
    folder = str(tmp_path)
    remote = route == "remote"
    settings = {"deviceFiltering": {"enable": True, "filterFile": "list.json"}, "remoteConfiguration": remote}
    if route == "hot reload":
        settings["checkConnectorsConfigurationInSeconds"] = 1
    files = {"list.json": FILTER}
    connectors = []
    if not remote:  # a connector that starts without a strategy and under another own name
        files["belt.json"] = belt_file(devices_broker.port, "first")
        connectors = [{"name": "Belt", "type": "mqtt", "configuration": "belt.json"}]
    path = write_config(folder, broker.port, thingsboard=settings, files=files, connectors=connectors)
    gateway = gateways(path)
    devices = DeviceClient(devices_broker.port, subscriptions=("unused/topic",))
    try:
        content = belt_file(devices_broker.port, "beltline", "ON_CHANGE")
        if remote:
            platform.wait_for(lambda m: any(t.startswith("v1/devices/me/attributes/request/") for _, t, _ in m), 20)
            platform.push_shared({"Belt": {"name": "Belt", "type": "mqtt", "configuration": "belt.json",
                                           "configurationJson": content}})
            platform.push_shared({"active_connectors": ["Belt"]})
        else:
            wait_until(lambda: devices.publish("belt/P0/data", {"serialNumber": "P0", "t": 0})
                       or values_of(platform, "P0"), 20, "the first connector", interval=0.3)
            with open(os.path.join(folder, "belt.json"), "w") as f:
                json.dump(content, f)
            if route == "SIGHUP":
                gateway.proc.send_signal(signal.SIGHUP)
        starts = 1 if remote else 2
        wait_until(lambda: gateway.output().count("Connector Belt (mqtt) started") >= starts, 20,
                   "the connector on its new configuration")
        check_rules_apply(platform, devices, "P1")
        code, _ = gateway.terminate()
        assert code == 0 and "Traceback" not in gateway.output()
    finally:
        devices.close()
