"""The parts behind ThingsBoard's gateway pages, each alone: device names after a rename
(packing, the registry), error counts, log keys by source, the RPC methods' params and
answers, the reboot's permission check."""
import json
import logging
import subprocess

from thingsboard_gateway.gateway.devices import DeviceRegistry
from thingsboard_gateway.gateway.error_counts import ErrorCounts
from thingsboard_gateway.gateway.gateway_rpc import GatewayMethods, Then, parsed_params
from thingsboard_gateway.gateway.host import Reboot
from thingsboard_gateway.gateway.remote_logs import RemoteLogs, source_key
from thingsboard_gateway.gateway.statistics import Statistics
from thingsboard_gateway.platform.names import DeviceNames
from thingsboard_gateway.platform.packing import pack
from thingsboard_gateway.storage.record import Record


def test_stored_records_are_packed_under_the_new_name():
    names = DeviceNames()
    records = [Record.build("Pump \u00e9", telemetry=[{"ts": 1, "values": {"p": 1}}], attributes={"m": "x"}),
               Record.build("Other", telemetry=[{"ts": 1, "values": {"q": 2}}])]
    names.rename("Pump \u00e9", "Pump 1")
    messages = pack(records, 10000, renamed=names.keys).messages
    bodies = [json.loads(m.payload) for m in messages]
    assert bodies == [{"Pump 1": [{"ts": 1, "values": {"p": 1}}], "Other": [{"ts": 1, "values": {"q": 2}}]},
                      {"Pump 1": {"m": "x"}}]


def test_renamed_twice_and_back():
    names = DeviceNames()
    assert names.rename("A", "B") == "A" and names.platform("A") == "B" and names.local("B") == "A"
    assert names.rename("B", "C") == "A" and names.platform("A") == "C" and names.local("B") == "B"
    assert names.rename("C", "A") == "A" and names.renamed() == {} and names.keys == {}


def test_a_rename_is_kept_by_the_registry_over_a_restart_and_a_disconnect(tmp_path):
    path = str(tmp_path / "devices.json")
    registry = DeviceRegistry(path)
    registry.add("meter-7", "Modbus", "meter")
    assert registry.rename("meter-7", "Kitchen meter") == "meter-7"
    assert registry.rename("never-seen", "x") is None
    registry.remove("meter-7")  # its connector said it is gone: the rename stays
    registry.save()
    again = DeviceRegistry(path)
    assert again.names.platform("meter-7") == "Kitchen meter" and len(again) == 0
    again.add("meter-7", "Modbus", "meter")
    again.remove("meter-7", deleted=True)  # deleted on the platform: forgotten
    again.save()
    assert DeviceRegistry(path).names.renamed() == {}


class _Connectors(object):
    def __init__(self):
        self.restarts = 0
        self.failures = 0

    def states(self):
        return {"Line": {"restarts": self.restarts}}

    def by_name(self, name):
        connectors = self

        class Connector(object):
            def statistics(self):
                return {"failures_malformed_json:x": connectors.failures, "messages_received": 99}
        return Connector()


def test_error_counts_sent_when_changed_and_from_zero_each_minute():
    clock = [0.0]
    sent = []
    connectors, stats = _Connectors(), Statistics()
    errors = ErrorCounts(connectors, stats, sent.append, clock=lambda: clock[0])
    assert errors.check() == {"Line_ERRORS_COUNT": 0, "ALL_ERRORS_COUNT": 0}
    assert errors.check() == {}  # unchanged: nothing sent
    connectors.failures, connectors.restarts = 2, 1
    stats.add("events_invalid", 1, "Line")
    clock[0] = 5.0
    assert errors.check() == {"Line_ERRORS_COUNT": 4, "ALL_ERRORS_COUNT": 4}
    clock[0] = 61.0
    assert errors.check() == {"Line_ERRORS_COUNT": 0, "ALL_ERRORS_COUNT": 0}  # a new minute
    assert len(sent) == 3 and sent[-1]["values"]["ALL_ERRORS_COUNT"] == 0
    errors.connected()
    assert errors.check(connected=True) == {"Line_ERRORS_COUNT": 0, "ALL_ERRORS_COUNT": 0}  # a new session


def test_log_lines_go_to_their_sources_tab_and_the_general_one():
    assert source_key("thingsboard_gateway.mqtt.connection") == "CONNECTION_LOGS"
    assert source_key("thingsboard_gateway.platform.sender") == "CONNECTION_LOGS"
    assert source_key("thingsboard_gateway.storage.file") == "STORAGE_LOGS"
    assert source_key("extensions.mqtt.custom") == "EXTENSIONS_LOGS"
    assert source_key("thingsboard_gateway.gateway.routing") == "SERVICE_LOGS"
    assert source_key("thingsboard_gateway.platformish") == "SERVICE_LOGS"
    sent = []
    logs = RemoteLogs(sent.extend, lambda: None, clock=lambda: 0.0)
    logs.set_remote_level("WARNING")
    try:
        logging.getLogger("thingsboard_gateway.storage.file").warning("disk full")
        logging.getLogger("thingsboard_gateway.storage.file").info("below the level")
        logs.send_pending()
    finally:
        logs.set_remote_level("NONE")
    assert len(sent) == 1 and set(sent[0]["values"]) == {"LOGS", "STORAGE_LOGS"}
    assert "disk full" in sent[0]["values"]["STORAGE_LOGS"]


def test_params_as_the_page_sends_them():
    assert parsed_params("{}") == {} and parsed_params(' {"a": 1}') == {"a": 1}
    assert parsed_params("Boiler 1") == "Boiler 1" and parsed_params("{broken") == "{broken"
    assert parsed_params({"a": 1}) == {"a": 1} and parsed_params(None) is None


class _Reboot(object):
    def __init__(self, problem):
        self.problem, self.started = problem, 0

    def check(self):
        return self.problem

    def start(self):
        self.started += 1


def _methods(tmp_path, reboot=None, renaming=True):
    registry = DeviceRegistry(str(tmp_path / "devices.json"))
    registry.add("meter-7", "Modbus", "meter")
    restarts = []
    methods = GatewayMethods(registry, lambda: {"messages_sent": 3}, lambda d: registry.remove(d, deleted=True),
                             restarts.append, reboot or _Reboot(None), renaming)
    return methods.table(), registry, restarts


def test_service_methods_answer_as_upstream(tmp_path):
    table, registry, restarts = _methods(tmp_path)
    assert table["gateway_ping"]({}) == "pong"
    assert table["gateway_devices"]({}) == {"meter-7": "Modbus"}
    restart = table["gateway_restart"]("{}")
    assert isinstance(restart, Then) and restarts == []  # answered first
    restart.action()
    assert restarts and "gateway_restart" in restarts[0]
    assert table["gateway_update"]({})["code"] == 200
    assert table["getTermInfo"]({})["code"] == 403 and table["sendCommand"]({"command": "rm -rf /"})["code"] == 403


def test_rename_and_delete(tmp_path):
    table, registry, _ = _methods(tmp_path)
    assert table["gateway_device_renamed"]({"meter-7": "Kitchen"}) == {"renamed": {"meter-7": "Kitchen"}}
    assert table["gateway_devices"]({}) == {"Kitchen": "Modbus"}
    assert table["gateway_device_renamed"]("not an object")["code"] == 400
    assert DeviceRegistry(str(tmp_path / "devices.json")).names.platform("meter-7") == "Kitchen"  # saved at once
    assert table["gateway_device_deleted"]("Kitchen") == {"deleted": "Kitchen", "known": True}
    assert len(registry) == 0 and registry.names.renamed() == {}
    off, registry, _ = _methods(tmp_path / "off", renaming=False)
    assert "ignored" in off["gateway_device_renamed"]({"meter-7": "Kitchen"})["resp"]
    assert registry.names.renamed() == {}


def test_reboot_refused_plainly_or_started_after_the_answer(tmp_path):
    table, _, _ = _methods(tmp_path, reboot=_Reboot("the service user may not reboot the board"))
    assert table["gateway_reboot"]("{}") == {"code": 403, "error": "the service user may not reboot the board"}
    reboot = _Reboot(None)
    table, _, _ = _methods(tmp_path / "ok", reboot=reboot)
    answer = table["gateway_reboot"]("{}")
    assert answer.value == "rebooting" and reboot.started == 0
    answer.action()
    assert reboot.started == 1


def test_reboot_permission_check():
    found = {"systemctl": "/bin/systemctl", "pkcheck": "/usr/bin/pkcheck"}
    calls = []

    def run(code):
        def fake(args, **kwargs):
            calls.append(args)
            return subprocess.CompletedProcess(args, code)
        return fake
    assert Reboot(which=lambda c: None, geteuid=lambda: 0).check().startswith("systemctl is not in PATH")
    assert Reboot(which=found.get, geteuid=lambda: 0, run=run(1)).check() is None  # root may
    assert "polkit denies" in Reboot(which=found.get, geteuid=lambda: 999, run=run(1)).check()
    assert calls[-1][:3] == ["/usr/bin/pkcheck", "--action-id", "org.freedesktop.login1.reboot"]
    assert Reboot(which=found.get, geteuid=lambda: 999, run=run(0)).check() is None
    assert "pkcheck" in Reboot(which={"systemctl": "/bin/systemctl"}.get, geteuid=lambda: 999).check()


class _Client(object):
    def __init__(self):
        self.connected, self.sent = False, []

    def is_connected(self):
        return self.connected

    def publish(self, topic, payload, on_ack=None):
        self.sent.append((topic, json.loads(payload)))


class _Sender(object):
    def consume(self, *args):
        pass


def test_a_device_first_seen_while_the_connection_opens_is_announced(tmp_path):
    """The connect callback announces the known devices before the connection counts as
    ready: a device the registry gains meanwhile is announced by its own first message
    (it was missing from the devices tab for that session, a race the 3.7 CI run hit)."""
    from thingsboard_gateway.config.gateway_spec import GATEWAY
    from thingsboard_gateway.config.schema import validate
    from thingsboard_gateway.gateway.gateway_device import GatewayDevice
    from thingsboard_gateway.gateway.ingest import Ingest
    client = _Client()
    tb = validate({"thingsboard": {"host": "h", "security": {"type": "accessToken", "accessToken": "t"}}},
                  GATEWAY, "tb_gateway.json")["thingsboard"]
    device = GatewayDevice(client, _Sender(), tb)
    ingest = Ingest(None, Statistics(), None, None, DeviceRegistry(str(tmp_path / "devices.json")), None, device,
                    None, 1.0)
    ingest._register("Before", "t", "C")  # not connected: announced by the connect callback
    assert client.sent == []
    ingest.announce_all()  # the connect callback; is_connected() is still False
    ingest._register("Meanwhile", "t", "C")
    ingest._register("Meanwhile", "t", "C")  # its next message: not again
    connects = [body["device"] for topic, body in client.sent if topic == "v1/gateway/connect"]
    assert connects == ["Before", "Meanwhile"]
    device.connection_lost()
    ingest._register("Away", "t", "C")  # the connection is gone: the next connect announces it
    assert [body["device"] for topic, body in client.sent if topic == "v1/gateway/connect"] == connects
