"""ThingsBoard's gateway pages as they really read and call a gateway (the keys and calls of
the gateway-management extension's source), played by the platform double: Version,
the device tabs, the errors column and card, the log tabs, the service RPC buttons, the
connector RPC page, and the platform's device renaming and deleting. Real brokers, the
MQTT connector, file storage; the platform link goes through a proxy that can cut it."""
import json
import os
import stat
import time

import pytest

from tests.support.devices import PacedPublisher, RelayPeers, seq_connector_file
from tests.support.gateway import GatewayProcess, ROOT, write_config
from tests.support.proxy import MqttProxy
from tests.support.waiting import wait_until

CONNECTOR = "Field Devices"
RPC = [{"type": "twoWay", "deviceNameFilter": ".*", "methodFilter": "getRelay",
        "requestTopicExpression": "sensor/${deviceName}/request/${methodName}/${requestId}",
        "responseTopicExpression": "sensor/${deviceName}/response/${methodName}/${requestId}",
        "responseTimeout": 10000, "valueExpression": "${params}"}]


def our_release():
    with open(os.path.join(ROOT, "thingsboard_gateway", "__init__.py")) as f:
        return next(line.split('"')[1] for line in f if line.startswith("__version__"))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("pages"))
    peers = RelayPeers(folder, ("sensor/+/request/#",))
    proxy = MqttProxy(peers.platform_broker.port)
    stub = os.path.join(folder, "bin")
    os.makedirs(stub)
    for command in ("systemctl", "pkcheck"):  # never the host's: the stub notes its arguments
        path = os.path.join(stub, command)
        with open(path, "w") as f:
            f.write("#!/bin/sh\necho \"%s $*\" >> %s\nexit 0\n" % (command, os.path.join(folder, "host-commands")))
        os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
    mqtt = seq_connector_file(peers.devices_broker.port, "gw-pages")
    mqtt["requestsMapping"] = {"serverSideRpc": RPC}
    path = write_config(folder, proxy.port, connectors=[{"name": CONNECTOR, "type": "mqtt",
                                                         "configuration": "mqtt.json"}],
                        storage={"type": "file", "data_folder_path": os.path.join(folder, "data")},
                        thingsboard={"remoteConfiguration": True,
                                     "statistics": {"enable": True, "statsSendPeriodInSeconds": 1}},
                        files={"mqtt.json": mqtt})
    gateway = GatewayProcess(path, env={"PATH": stub + os.pathsep + os.environ.get("PATH", "")})
    try:
        wait_until(lambda: peers.platform.latest_client("Version"), 30, "the gateway connected")  # any test alone
        yield peers, proxy, gateway, folder
    finally:
        gateway.kill()
        proxy.close()
        peers.close()


def seqs(platform, device):
    return [v["seq"] for d, v, _ in platform.telemetry() if d == device and "seq" in v]


def publish(peers, device, first, last):
    for n in range(first, last + 1):
        peers.devices.client.publish("sensor/%s/data" % device, json.dumps({"serialNumber": device, "seq": n}), qos=1)


def test_version_is_the_format_we_speak_and_our_release_beside_it(world):
    peers, _, _, _ = world
    platform = peers.platform
    wait_until(lambda: platform.latest_client("Version"), 20, "Version")
    assert platform.latest_client("Version") == "3.8.5"
    assert platform.page_version() >= 3.6  # the pages' current forms, report strategies, configVersion
    assert platform.latest_client("gatewayRelease") == our_release()


def test_devices_sit_in_their_connectors_tab_announced_once_a_session(world):
    peers, _, _, _ = world
    platform = peers.platform
    publish(peers, "TAB-1", 1, 20)
    wait_until(lambda: len(seqs(platform, "TAB-1")) == 20, 20, "TAB-1's data")
    assert platform.device_tabs()[CONNECTOR]["TAB-1"] == "mqtt"
    described = [b for b in platform.on("v1/gateway/attributes") if "connectorName" in b.get("TAB-1", {})]
    assert len(described) == 1  # once, not per message


def test_errors_column_and_card(world):
    peers, _, _, _ = world
    platform = peers.platform
    for _ in range(3):
        peers.devices.client.publish("sensor/BAD/data", b"{not json", qos=1)
    errors = wait_until(lambda: platform.stat(CONNECTOR + "_ERRORS_COUNT"), 20, "the errors column")
    assert errors >= 3
    assert platform.stat("ALL_ERRORS_COUNT") >= errors


def test_log_tabs(world):
    peers, proxy, gateway, _ = world
    platform = peers.platform
    platform.push_shared({"RemoteLoggingLevel": "INFO"})
    wait_until(lambda: platform.latest_client("RemoteLoggingLevel") == "INFO", 10, "the level")
    platform.device_rpc("ghost", "nothing")  # logged by the gateway's service: a WARNING
    wait_until(lambda: any("ghost" in line for line in platform.logs("SERVICE_LOGS")), 20, "the service tab")
    assert any("ghost" in line for line in platform.logs("LOGS"))  # the general tab too
    proxy.cut()  # the platform connection's own lines: sent once it is back
    time.sleep(1.0)
    proxy.restore()
    wait_until(lambda: platform.logs("CONNECTION_LOGS"), 20, "the connection tab")
    assert not [line for line in platform.logs("SERVICE_LOGS") if "thingsboard_gateway.platform" in line]
    platform.push_shared({"RemoteLoggingLevel": "NONE"})
    wait_until(lambda: platform.latest_client("RemoteLoggingLevel") == "NONE", 10, "the level")


def test_the_service_rpc_buttons(world):
    peers, _, _, folder = world
    platform = peers.platform
    if not seqs(platform, "TAB-1"):  # run alone: a device for gateway_devices
        publish(peers, "TAB-1", 1, 1)
        wait_until(lambda: seqs(platform, "TAB-1"), 20, "TAB-1")
    assert platform.service_rpc("Ping") == {"code": 200, "resp": "pong"}
    assert "messages_sent" in platform.service_rpc("Stats")["resp"]
    assert platform.service_rpc("Devices")["resp"]["TAB-1"] == CONNECTOR
    version = platform.service_rpc("Version")["resp"]
    assert version["current_version"] == our_release() and version["format_version"] == "3.8.5"
    update = platform.service_rpc("Update")
    assert update["code"] == 200 and "OTA" in update["resp"]["how"]
    assert platform.service_rpc("Stats", params={})["code"] == 200  # an object as params too
    unknown = platform.service_rpc("Selfdestruct")
    assert unknown["code"] == 404 and "gateway_selfdestruct" in unknown["error"]
    request_id = platform.gateway_rpc("getTermInfo", {})
    shell = platform.answer(request_id)
    assert shell["code"] == 403 and "remote shell" in shell["error"]
    reboot = platform.service_rpc("Reboot")
    assert reboot == {"code": 200, "resp": "rebooting"}
    commands = os.path.join(folder, "host-commands")
    wait_until(lambda: os.path.exists(commands) and "systemctl reboot" in open(commands).read(), 10, "the reboot")


def test_the_connector_rpc_page(world):
    peers, _, _, _ = world
    platform = peers.platform
    peers.devices.responders["sensor/+/request/getRelay/+"] = lambda topic, payload: (
        topic.replace("/request/", "/response/"), json.dumps({"relay": "on", "asked": json.loads(payload)}))
    connector_id = platform.latest_client(CONNECTOR)["configurationJson"]["id"]
    answer = platform.connector_rpc(CONNECTOR, "getRelay", {"deviceName": "TAB-1", "pin": 4})
    assert answer == {"relay": "on", "asked": {"deviceName": "TAB-1", "pin": 4}}
    request_id = platform.gateway_rpc("mqtt_getRelay", {"deviceName": "TAB-1", "connectorId": "not-" + connector_id})
    assert platform.answer(request_id)["code"] == 404  # no such connector


def test_a_renamed_device_goes_by_its_new_name_backlog_included(world):
    peers, proxy, gateway, _ = world
    platform = peers.platform
    publish(peers, "REN-1", 1, 10)
    wait_until(lambda: len(seqs(platform, "REN-1")) == 10, 20, "REN-1's first data")
    lost = gateway.output().count("connection lost")
    proxy.cut()  # the platform is away: what follows waits in storage under the old name
    wait_until(lambda: gateway.output().count("connection lost") > lost, 10, "the gateway noticed")
    publish(peers, "REN-1", 11, 30)
    time.sleep(1.5)
    # The platform renames the device; on the next session it says so before the gateway delivers.
    platform.before_limits = lambda double: double.gateway_rpc("gateway_device_renamed", {"REN-1": "Boiler 1"})
    proxy.restore()
    wait_until(lambda: 30 in seqs(platform, "Boiler 1"), 30, "the backlog under the new name")
    assert seqs(platform, "REN-1") == list(range(1, 11))
    assert sorted(seqs(platform, "Boiler 1")) == list(range(11, 31))
    # RPC to the new name reaches the device under its own name; the reply carries the new one
    request_id = platform.device_rpc("Boiler 1", "getRelay", {"pin": 1})
    reply = platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == request_id and "relay" in b.get("data", {}))
    assert reply["device"] == "Boiler 1"


def test_restart_is_orderly_and_loses_nothing_and_a_rename_survives_it(world):
    peers, _, gateway, _ = world
    platform = peers.platform
    announced_before = len(platform.on("v1/gateway/connect"))
    publisher = PacedPublisher(peers.devices.client, 50, device="RST-1", limit=300)
    wait_until(lambda: len(seqs(platform, "RST-1")) >= 50, 20, "data before the restart")
    assert platform.service_rpc("Restart") == {"code": 200, "resp": "restarting"}
    wait_until(lambda: gateway.output().count(" starting: platform") >= 2, 30, "the gateway started again")
    publisher.stop()
    publish(peers, "REN-1", 31, 32)
    wait_until(lambda: set(range(1, publisher.sent + 1)) <= set(seqs(platform, "RST-1")), 40, "everything sent")
    wait_until(lambda: 32 in seqs(platform, "Boiler 1"), 20, "the renamed device after the restart")
    announced = [b.get("device") for b in platform.on("v1/gateway/connect")[announced_before:]]
    assert "Boiler 1" in announced and "REN-1" not in announced  # the rename was kept over the restart
    assert "Traceback" not in gateway.output()


def test_a_deleted_device_is_announced_again_by_its_next_message(world):
    peers, _, _, _ = world
    platform = peers.platform
    request_id = platform.gateway_rpc("gateway_device_deleted", "Boiler 1")
    assert platform.answer(request_id)["resp"] == {"deleted": "Boiler 1", "known": True}
    before = len(platform.on("v1/gateway/connect"))
    publish(peers, "REN-1", 33, 33)
    wait_until(lambda: 33 in seqs(platform, "REN-1"), 20, "the device again, under its own name")
    assert {"device": "REN-1", "type": "default"} in platform.on("v1/gateway/connect")[before:]
