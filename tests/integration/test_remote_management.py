"""Managed from ThingsBoard, end to end: a gateway process, the platform double acting as
ThingsBoard toward the gateway device (answers its attribute requests, pushes shared
attributes, drops the session when the broker restarts), connectors that listen on real
ports (socket), and files on disk."""
import json
import os
import signal
import socket
import time

import pytest

from tests.support.broker import Mosquitto, free_port
from tests.support.gateway import write_config
from tests.support.platform import PlatformDouble
from tests.support.waiting import wait_until


def socket_file(port, device="Line"):
    return {"socket": {"type": "TCP", "address": "127.0.0.1", "port": port, "bufferSize": 1024},
            "devices": [{"address": "*:*", "deviceName": device,
                         "telemetry": [{"key": "t", "type": "double", "byteFrom": 0, "byteTo": -1}]}]}


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        return True
    except OSError:
        return False


def send_line(port, text):
    with socket.create_connection(("127.0.0.1", port), 2) as s:
        s.sendall(text.encode())


def connector_value(name, port, kind="socket", **extra):
    value = {"name": name, "type": kind, "configuration": "%s.json" % name.lower(), "logLevel": "INFO",
             "enableRemoteLogging": False, "configurationJson": socket_file(port), "ts": int(time.time() * 1000)}
    value.update(extra)
    return value


@pytest.fixture
def managed(tmp_path, broker, platform, gateways):
    """start(**thingsboard) -> (gateway, folder, socket port): one socket connector `Line`."""
    def start(remote=True, files=None, connectors=None, **thingsboard):
        port = free_port()
        settings = {"remoteConfiguration": remote}
        settings.update(thingsboard)
        path = write_config(str(tmp_path), broker.port, thingsboard=settings,
                            files=dict({"socket.json": socket_file(port)}, **(files or {})),
                            connectors=connectors or [{"name": "Line", "type": "socket", "configuration": "socket.json"}])
        gateway = gateways(path)
        wait_until(lambda: listening(port), 20, "the socket connector")
        platform.wait_for(lambda m: any(t.startswith("v1/devices/me/rpc/request/") for _, t, _ in m), 20)  # subscribed
        return gateway, str(tmp_path), port
    return start


def started(gateway, name):
    return gateway.output().count("Connector %s (" % name)


def main_file(folder):
    with open(os.path.join(folder, "tb_gateway.json")) as f:
        return json.load(f)


def test_reports_its_configuration_and_asks_for_the_shared_one(managed, platform):
    gateway, folder, port = managed()
    wait_until(lambda: platform.latest_client("Line"), 20, "the connector's client attribute")
    general = platform.latest_client("general_configuration")
    assert general["host"] == "127.0.0.1" and general["remoteConfiguration"] is True and "ts" in general
    assert "type" in platform.latest_client("storage_configuration")
    assert platform.latest_client("grpc_configuration") == {"ts": platform.latest_client("grpc_configuration")["ts"]}
    assert "ts" in platform.latest_client("logs_configuration")
    assert platform.latest_client("active_connectors") == ["Line"]
    assert platform.latest_client("Version")
    line = platform.latest_client("Line")
    assert line["type"] == "socket" and line["configuration"] == "socket.json"
    assert line["configurationJson"]["socket"]["port"] == port and line["enableRemoteLogging"] is False
    wait_until(lambda: any("Line" in (keys or "").split(",") and "general_configuration" in keys
                           for keys in platform.own_requests()), 10, "the request for shared attributes")


def test_add_change_disable_and_delete_a_connector_survive_a_restart(managed, platform, gateways):
    gateway, folder, port = managed()
    wait_until(lambda: platform.latest_client("Line"), 20, "the report")
    first, second = free_port(), free_port()
    platform.push_shared({"Belt": connector_value("Belt", first)})
    platform.push_shared({"active_connectors": ["Line", "Belt"]})
    wait_until(lambda: listening(first), 20, "the added connector")
    assert {"name": "Belt", "type": "socket", "configuration": "belt.json"} in main_file(folder)["connectors"]
    wait_until(lambda: platform.latest_client("active_connectors") == ["Line", "Belt"], 10, "the echo")
    # A change: the connector moves to its new port; the old file is kept as a backup.
    platform.push_shared({"Belt": connector_value("Belt", second)})
    wait_until(lambda: listening(second) and not listening(first), 20, "the changed connector")
    assert os.listdir(os.path.join(folder, "backup"))
    send_line(second, "21.5")
    platform.wait_for(lambda m: platform.latest("Line").get("t") == 21.5, 10)
    # Restarted with a platform that sends nothing: the change is on disk.
    platform.own_shared.clear()
    code, _ = gateway.terminate()
    assert code == 0
    requests = len(platform.own_requests())
    again = gateways(os.path.join(folder, "tb_gateway.json"))
    wait_until(lambda: listening(second) and listening(port), 20, "both connectors after a restart")
    wait_until(lambda: len(platform.own_requests()) > requests, 20, "the restarted gateway's request")
    # Disable, then delete: the connector stops, its entry leaves tb_gateway.json, its file stays.
    platform.push_shared({"active_connectors": ["Line"], "deleted": ["Belt"]})
    wait_until(lambda: not listening(second), 20, "the disabled connector to stop")
    assert [c["name"] for c in main_file(folder)["connectors"]] == ["Line"]
    assert os.path.exists(os.path.join(folder, "belt.json")) and listening(port)
    code, _ = again.terminate()
    assert code == 0 and "Traceback" not in again.output()


def test_identical_configuration_and_a_reconnect_storm_touch_nothing(managed, platform, broker):
    gateway, folder, port = managed()
    wait_until(lambda: platform.latest_client("Line"), 20, "the report")
    line = dict(platform.latest_client("Line"), ts=int(time.time() * 1000) + 5)  # newer ts, same content
    platform.own_shared.update({"Line": line, "active_connectors": ["Line"]})
    platform.push_shared({"Line": line})
    for _ in range(10):  # the session drops; each reconnect re-delivers the shared attributes
        requests = len(platform.own_requests())
        broker.stop()
        broker.start()
        wait_until(lambda: len(platform.own_requests()) > requests, 30, "the request after a reconnect")
    wait_until(lambda: listening(port), 10, "the connector")
    assert started(gateway, "Line") == 1, gateway.output()[-3000:]
    assert "Restarting" not in gateway.output() and not os.path.exists(os.path.join(folder, "backup"))


def test_an_invalid_change_is_rejected_and_reported(managed, platform):
    gateway, folder, port = managed()
    wait_until(lambda: platform.latest_client("Line"), 20, "the report")
    bad = connector_value("Line", port, configuration="socket.json")
    bad["configurationJson"]["socket"]["port"] = "not a port"
    before = open(os.path.join(folder, "socket.json")).read()
    platform.push_shared({"Line": bad})
    errors = wait_until(lambda: platform.latest_client("remoteConfigurationErrors"), 10, "the rejection")
    assert errors["Line"].startswith("socket.json: socket.port: expected"), errors
    assert open(os.path.join(folder, "socket.json")).read() == before and listening(port)
    # No program from a remote change: a custom class, a statistics command.
    custom = connector_value("Plugin", free_port(), kind="socket")
    custom["configurationJson"]["devices"][0]["converter"] = "EvilConverter"
    platform.push_shared({"Plugin": custom})
    wait_until(lambda: "Plugin" in (platform.latest_client("remoteConfigurationErrors") or {}), 10, "refused")
    assert "come only from local files" in platform.latest_client("remoteConfigurationErrors")["Plugin"]
    general = dict(main_file(folder)["thingsboard"])
    general["statistics"] = dict(general.get("statistics") or {}, commands=[{"command": "rm -rf /", "attributeOnGateway": "x"}])
    platform.push_shared({"general_configuration": general})
    wait_until(lambda: "general_configuration" in (platform.latest_client("remoteConfigurationErrors") or {}), 10,
               "refused commands")
    assert gateway.output().count("Remote configuration of Line rejected") == 1
    assert "Traceback" not in gateway.output() and started(gateway, "Line") == 1


def test_with_remote_configuration_off_changes_are_refused_once(managed, platform):
    gateway, folder, port = managed(remote=False)
    platform.push_shared({"Belt": connector_value("Belt", free_port())})
    errors = wait_until(lambda: platform.latest_client("remoteConfigurationErrors"), 20, "the refusal")
    assert "remoteConfiguration is false" in errors["Belt"]
    platform.push_shared({"Belt": connector_value("Belt", free_port())})
    time.sleep(0.5)  # a second refusal is not logged again
    assert gateway.output().count("remote changes are refused") == 1
    assert [c["name"] for c in main_file(folder)["connectors"]] == ["Line"]


def test_new_platform_settings_are_tried_first(managed, platform, broker, tmp_path):
    gateway, folder, port = managed(remoteConfigurationTrialSeconds=2)
    wait_until(lambda: platform.latest_client("general_configuration"), 20, "the report")
    general = dict(main_file(folder)["thingsboard"], port=free_port())  # nobody listens there
    platform.push_shared({"general_configuration": general})
    errors = wait_until(lambda: platform.latest_client("remoteConfigurationErrors"), 20, "the failed trial")
    assert errors["general_configuration"].startswith("kept the old platform settings")
    assert main_file(folder)["thingsboard"]["port"] == broker.port
    send_line(port, "3.5")
    platform.wait_for(lambda m: platform.latest("Line").get("t") == 3.5, 10)  # still delivering
    # Settings that work: written, and the gateway starts again on them (the new broker).
    other = Mosquitto(str(tmp_path), "other").start()
    try:
        moved = PlatformDouble(other.port)
        try:
            platform.push_shared({"general_configuration": dict(main_file(folder)["thingsboard"], port=other.port)})
            moved.wait_for(lambda m: moved.latest_client("Version"), 40)
            assert main_file(folder)["thingsboard"]["port"] == other.port
            wait_until(lambda: listening(port), 20, "the connector after the restart")
            send_line(port, "4.5")
            moved.wait_for(lambda m: moved.latest("Line").get("t") == 4.5, 10)
        finally:
            moved.close()
        code, _ = gateway.terminate()
        assert code == 0 and "Traceback" not in gateway.output()
    finally:
        other.stop()


def test_remote_logs_are_bounded_under_a_flood(managed, platform):
    gateway, folder, port = managed(statistics={"enable": False})
    wait_until(lambda: platform.latest_client("Line"), 20, "the report")
    platform.push_shared({"RemoteLoggingLevel": "WARNING"})
    wait_until(lambda: platform.latest_client("RemoteLoggingLevel") == "WARNING", 10, "the level")
    start = time.monotonic()
    for n in range(1000):  # each one a WARNING line in the gateway ("... for unknown device ...")
        platform.client.publish("v1/gateway/attributes", json.dumps({"device": "ghost-%d" % n, "data": {"x": 1}}))
    send_line(port, "7.5")
    platform.wait_for(lambda m: platform.latest("Line").get("t") == 7.5, 10)  # device data is not held up
    summary = wait_until(lambda: [line for line in platform.logs() if "log lines were not sent" in line], 20,
                         "the summary of what was dropped")
    elapsed = time.monotonic() - start
    lines = platform.logs()
    assert len(lines) <= 20 + 10 * elapsed + 1, (len(lines), elapsed)
    assert any("unknown device" in line for line in lines) and summary
    messages = [b for b in platform.on("v1/devices/me/telemetry") if isinstance(b, list)]
    assert all(len(m) <= 20 for m in messages)


def test_statistics_in_upstreams_shapes(managed, platform):
    gateway, folder, port = managed(statistics={"enable": True, "statsSendPeriodInSeconds": 1})
    shapes = wait_until(lambda: [b["values"] for b in platform.on("v1/devices/me/telemetry")
                                 if isinstance(b, dict) and "machineStats" in b.get("values", {})], 20, "the stats")
    values = shapes[-1]
    # upstream's keys, in upstream's groups (ThingsBoard's gateway charts read them there)
    assert {"totalCpuUsage", "diskUsage", "freeMemory", "freeDisk", "gwProcessCpuUsage", "gwMemory",
            "gwProcessMemoryFullInfo", "msgsSentToPlatform", "msgsReceivedFromPlatform"} <= set(values["machineStats"])
    assert values["machineStats"]["gwProcessMemoryFullInfo"]["rss"] > 0
    assert {"storageMsgPulled", "storageMsgCount", "platformMsgPushed", "platformAttrProduced",
            "platformTsProduced"} <= set(values["serviceStats"])
    assert {"eventsAdded", "eventsProcessed"} <= set(values["serviceStats"])  # ours too
    line = values["connectorsStats"]["Line"]
    assert {"connectorMsgsReceived", "connectorBytesReceived", "storageMsgPushed", "connectorsErrors",
            "convertersErrors"} <= set(line)
    assert line["state"] == "running"
    assert platform.latest_client("totalMemory") > 0 and platform.latest_client("cpuCount") >= 1
    assert platform.stat("messages_sent") is not None  # our own counters too


def test_connector_files_edited_on_disk_are_applied_on_sighup_or_by_the_check_period(managed, platform):
    gateway, folder, port = managed(checkConnectorsConfigurationInSeconds=1)
    moved = free_port()
    with open(os.path.join(folder, "socket.json"), "w") as f:
        json.dump(socket_file(moved), f)
    wait_until(lambda: listening(moved) and not listening(port), 20, "the reloaded connector")
    with open(os.path.join(folder, "socket.json"), "w") as f:
        f.write('{"socket": {"port": "broken"')  # invalid: the old configuration keeps running
    gateway.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "keeps running on its old configuration" in gateway.output(), 10, "one line why")
    time.sleep(1.5)
    assert listening(moved) and gateway.output().count("keeps running on its old configuration") == 1
    code, _ = gateway.terminate()
    assert code == 0 and "Traceback" not in gateway.output()



def test_logs_and_storage_sections_and_a_connectors_own_remote_logs(managed, platform, gateways):
    log_file = "remote-applied.log"
    logs = {"version": 1, "disable_existing_loggers": False,
            "formatters": {"plain": {"format": "%(levelname)s %(name)s %(message)s"}},
            "handlers": {"file": {"class": "logging.FileHandler", "formatter": "plain", "filename": "LOGFILE"}},
            "root": {"level": "INFO", "handlers": ["file"]}}
    gateway, folder, port = managed()
    wait_until(lambda: platform.latest_client("logs_configuration"), 20, "the report")
    logs["handlers"]["file"]["filename"] = os.path.join(folder, log_file)
    platform.push_shared({"logs_configuration": dict(logs, ts=1)})
    wait_until(lambda: os.path.exists(os.path.join(folder, "logs.json")), 10, "logs.json")
    wait_until(lambda: platform.latest_client("logs_configuration") == dict(logs, ts=1), 10, "the echo")
    platform.push_shared({"logs_configuration": {"version": 1, "handlers": {"x": {"class": "no.such.Handler"}},
                                                 "ts": 2}})
    errors = wait_until(lambda: platform.latest_client("remoteConfigurationErrors"), 10, "the rejection")
    assert "invalid logging configuration" in errors["logs_configuration"]
    with open(os.path.join(folder, "logs.json")) as f:
        assert json.load(f) == logs  # the good one stays
    # The socket connector's own lines as Line_LOGS, when its file enables remote logging.
    value = connector_value("Line", port, configuration="socket.json", enableRemoteLogging=True, logLevel="DEBUG")
    platform.push_shared({"Line": value})
    wait_until(lambda: "Connector Line (socket) started" in open(os.path.join(folder, log_file)).read(), 20,
               "the connector restarted, logged to the new file")
    send_line(port, "not a number")  # the connector's warning, sent as Line_LOGS
    wait_until(lambda: platform.logs("Line_LOGS"), 20, "the connector's remote log line")
    # A storage change: written, then the gateway starts again on it.
    storage = dict(main_file(folder)["storage"], type="file", data_folder_path=os.path.join(folder, "filedata"))
    platform.push_shared({"storage_configuration": storage})
    wait_until(lambda: os.path.isdir(os.path.join(folder, "filedata")), 30, "the file storage after the restart")
    assert main_file(folder)["storage"]["type"] == "file"
    code, _ = gateway.terminate()
    assert code == 0
