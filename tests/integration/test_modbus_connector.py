"""The Modbus connector against pymodbus's own servers (TCP, UDP, RTU over a pty pair)."""
import shutil
import time

import pytest
from pymodbus.constants import Endian
from pymodbus.payload import BinaryPayloadBuilder

from tests.support.broker import Mosquitto, free_port
from tests.support.gateway import GatewayProcess, write_config
from tests.support.modbus_server import ModbusServer
from tests.support.platform import PlatformDouble
from tests.support.recorder import RecordingGateway
from tests.support.waiting import wait_until

TYPED = [("i16", "16int", -1234, "add_16bit_int"), ("u32", "32uint", 3123456789, "add_32bit_uint"),
         ("i64", "64int", -1234567890123, "add_64bit_int"), ("f32", "32float", 3.5, "add_32bit_float"),
         ("f64", "64float", -2.25, "add_64bit_float")]


def typed_tags_and_registers(byte_order, word_order, base):
    """Tags of several types at consecutive addresses from `base`, and the registers a
    pymodbus client would write for them."""
    tags, registers, address = [], [], base
    for key, type_name, value, method in TYPED:
        builder = BinaryPayloadBuilder(byteorder=getattr(Endian, byte_order.title()),
                                       wordorder=getattr(Endian, word_order.title()))
        getattr(builder, method)(value)
        regs = builder.to_registers()
        tags.append({"tag": "%s_%s_%s" % (key, byte_order[0], word_order[0]), "type": type_name,
                     "functionCode": 3, "address": address, "byteOrder": byte_order, "wordOrder": word_order})
        registers.append((address, regs))
        address += len(regs)
    return tags, registers


def slave(name, server, **extra):
    entry = {"deviceName": name, "deviceType": "meter", "unitId": 1, "pollPeriod": 200, "timeout": 1,
             "retries": 1, "connectAttemptCount": 2, "waitAfterFailedAttemptsMs": 500,
             "attributes": [], "timeseries": [], "attributeUpdates": [], "rpc": []}
    if server.kind == "rtu":
        entry.update({"type": "serial", "method": "rtu", "port": server.client_port, "baudrate": 19200})
    else:
        entry.update({"type": server.kind, "host": "127.0.0.1", "port": server.port})
    entry.update(extra)
    return entry


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("modbus"))
    broker = Mosquitto(folder, "platform").start()
    platform = PlatformDouble(broker.port)
    servers = {"tcp": ModbusServer("tcp"), "udp": ModbusServer("udp")}
    if shutil.which("socat"):
        servers["rtu"] = ModbusServer("rtu")
    typed = []
    for i, (b, w) in enumerate([("BIG", "BIG"), ("BIG", "LITTLE"), ("LITTLE", "BIG"), ("LITTLE", "LITTLE")]):
        tags, registers = typed_tags_and_registers(b, w, 100 + i * 30)
        typed += tags
        for address, regs in registers:
            servers["tcp"].set("hr", address, regs)
    servers["tcp"].set("hr", 0, [215, 42])
    servers["tcp"].set("co", 1, [1])
    slaves = [slave("TCP Meter", servers["tcp"],
                    timeseries=[{"tag": "temperature", "type": "16int", "functionCode": 3, "address": 0,
                                 "divider": 10},
                                {"tag": "count", "type": "16uint", "functionCode": 3, "address": 1},
                                {"tag": "relay", "type": "bits", "functionCode": 1, "address": 1}] + typed,
                    attributes=[{"tag": "missing", "type": "16int", "functionCode": 4, "address": 5000,
                                 "objectsCount": 20}],
                    attributeUpdates=[{"tag": "setpoint", "type": "32float", "functionCode": 16, "address": 50}],
                    rpc=[{"tag": "setRelay", "type": "bits", "functionCode": 5, "address": 1},
                         {"tag": "getCount", "type": "16uint", "functionCode": 3, "address": 1}]),
              slave("UDP Meter", servers["udp"], timeseries=[{"tag": "level", "type": "16int", "functionCode": 4,
                                                              "address": 5}]),
              slave("Ghost", type("S", (), {"kind": "tcp", "port": free_port()})(),
                    timeseries=[{"tag": "x", "type": "16int", "functionCode": 3, "address": 0}])]
    servers["udp"].set("ir", 5, [77])
    if "rtu" in servers:
        servers["rtu"].set("hr", 3, [1001])
        slaves.append(slave("RTU Meter", servers["rtu"], timeseries=[{"tag": "flow", "type": "16int",
                                                                      "functionCode": 3, "address": 3}]))
    path = write_config(folder, broker.port, connectors=[{"name": "Modbus", "type": "modbus",
                                                          "configuration": "modbus.json"}],
                        thingsboard={"statistics": {"enable": True, "statsSendPeriodInSeconds": 1}},
                        files={"modbus.json": {"master": {"slaves": slaves}}})
    gateway = GatewayProcess(path)
    try:
        yield platform, servers, gateway, typed
    finally:
        gateway.kill()
        platform.close()
        for server in servers.values():
            server.stop()
        broker.stop()



def test_registers_become_telemetry(world):
    platform, _, _, _ = world
    platform.wait_for(lambda m: platform.latest("TCP Meter").get("count") == 42)
    values = platform.latest("TCP Meter")
    assert values["temperature"] == 21.5 and values["relay"] is True
    assert {"device": "TCP Meter", "type": "meter"} in platform.on("v1/gateway/connect")


def test_every_type_in_every_byte_and_word_order(world):
    platform, _, _, typed = world
    platform.wait_for(lambda m: all(t["tag"] in platform.latest("TCP Meter") for t in typed))
    values = platform.latest("TCP Meter")
    expected = {key: value for key, _, value, _ in TYPED}
    for tag in typed:
        assert values[tag["tag"]] == expected[tag["tag"].split("_")[0]], tag


def test_udp_and_rtu_slaves(world):
    platform, servers, _, _ = world
    platform.wait_for(lambda m: platform.latest("UDP Meter").get("level") == 77)
    if "rtu" not in servers:
        pytest.skip("socat is not installed: no pseudo-terminal pair for RTU")
    platform.wait_for(lambda m: platform.latest("RTU Meter").get("flow") == 1001)
    assert platform.latest("UDP Meter")["level"] == 77 and platform.latest("RTU Meter")["flow"] == 1001


def test_neighbouring_registers_are_read_in_one_request(world):
    platform, servers, _, _ = world
    platform.wait_for(lambda m: platform.latest("TCP Meter").get("count") == 42)
    block = servers["tcp"].blocks["hr"]

    def tcp_polls():
        return len([1 for d, _, _ in platform.telemetry() if d == "TCP Meter"])

    before_reads, before_polls = block.reads, tcp_polls()
    platform.wait_for(lambda m: tcp_polls() >= before_polls + 4)
    reads, polls = block.reads - before_reads, tcp_polls() - before_polls
    # 22 holding-register tags in 5 address groups (0-1 and four typed groups at 100, 130,
    # 160, 190): 5 requests per poll, not 22.
    assert polls >= 3
    assert 5 * (polls - 2) <= reads <= 5 * (polls + 2)



def test_exception_response_is_counted_and_others_go_on(world):
    platform, _, _, _ = world
    # The statistics message carries each counter once it is not zero: a wait for each.
    assert platform.wait_for(lambda m: (platform.stat("Modbus_failures_read:TCP Meter") or 0) > 0)
    assert platform.wait_for(lambda m: (platform.stat("Modbus_failures_connect:Ghost") or 0) > 0)
    count = len([1 for d, v, _ in platform.telemetry() if d == "UDP Meter"])
    platform.wait_for(lambda m: len([1 for d, v, _ in platform.telemetry() if d == "UDP Meter"]) > count + 3)


def test_rpc_read_and_write(world):
    platform, servers, _, _ = world
    platform.wait_topic("v1/gateway/connect", lambda b: b["device"] == "TCP Meter")
    request = platform.device_rpc("TCP Meter", "getCount")
    reply = platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == request and "method" not in b["data"])
    assert reply["data"] == {"value": 42}
    request = platform.device_rpc("TCP Meter", "setRelay", {"value": False})
    platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == request and b["data"] == {"success": True})
    assert servers["tcp"].get("co", 1) == [False]
    generic = platform.device_rpc("TCP Meter", "set", {"type": "16int", "functionCode": 6, "address": 60,
                                                       "objectsCount": 1, "value": -7})
    platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == generic and b["data"] == {"success": True})
    assert servers["tcp"].get("hr", 60) == [65536 - 7]


def test_attribute_update_writes_the_register(world):
    platform, servers, _, _ = world
    platform.wait_topic("v1/gateway/connect", lambda b: b["device"] == "TCP Meter")
    platform.shared_attributes("TCP Meter", {"setpoint": 12.5})
    from thingsboard_gateway.connectors.modbus import codec
    wait_until(lambda: codec.decode(servers["tcp"].get("hr", 50, 2), "32float") == 12.5, 10, "the register written")
    assert codec.decode(servers["tcp"].get("hr", 50, 2), "32float") == 12.5


def test_slave_restart_resumes_data_and_others_are_unaffected(world):
    platform, servers, _, _ = world
    platform.wait_for(lambda m: platform.latest("UDP Meter").get("level") == 77)
    port = servers["tcp"].port
    hr_values = servers["tcp"].get("hr", 0, 400)
    servers["tcp"].stop()
    platform.wait_topic("v1/gateway/disconnect", lambda b: b["device"] == "TCP Meter", timeout=20)
    udp_before = len([1 for d, _, _ in platform.telemetry() if d == "UDP Meter"])
    platform.wait_for(lambda m: len([1 for d, _, _ in platform.telemetry() if d == "UDP Meter"]) >= udp_before + 4)
    restarted = ModbusServer("tcp", port=port)
    servers["tcp"] = restarted
    restarted.set("hr", 0, hr_values[:2])
    restarted.set("hr", 1, [43])
    platform.wait_for(lambda m: platform.latest("TCP Meter").get("count") == 43, timeout=20)
    assert platform.latest("TCP Meter")["count"] == 43


def test_sigterm_with_an_unreachable_slave_exits_quickly(world):
    _, _, gateway, _ = world
    code, seconds = gateway.terminate()
    assert code == 0 and seconds < 10


def test_our_example_with_a_slave_section_loads_and_bad_served_types_are_refused():
    import json as _json
    import os
    from thingsboard_gateway.connectors.modbus.connector import ModbusConnector
    example = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "config",
                           "modbus.json")
    config = _json.load(open(example))
    config["slave"] = {"type": "tcp", "host": "127.0.0.1", "port": 5026}
    warnings = []
    loaded = ModbusConnector.load_config(config, "modbus.json", warnings)
    assert warnings == [] and loaded["slave"]["method"] == "socket" and loaded["slave"]["unitId"] == 1
    assert loaded["master"]["slaves"][0]["timeseries"][0]["functionCode"] == 3
    config["slave"]["values"] = {"holding_registers": {"timeseries": [{"tag": "x", "type": "17int", "address": 1}]}}
    from thingsboard_gateway.config.errors import ConfigError
    with pytest.raises(ConfigError) as info:
        ModbusConnector.load_config(config, "modbus.json", [])
    assert str(info.value).startswith("modbus.json: slave.values.holding_registers.timeseries[0].type: expected one of")
    config["slave"] = {"type": "tcp", "port": "5026"}
    with pytest.raises(ConfigError) as info:
        ModbusConnector.load_config(config, "modbus.json", [])
    assert str(info.value) == "modbus.json: slave.port: expected an integer 1-65535, got '5026'"


def test_send_data_only_on_change_hands_over_its_strategy(tmp_path):
    from thingsboard_gateway.connectors.modbus.connector import ModbusConnector
    server = ModbusServer("tcp")
    try:
        server.set("hr", 0, [1, 2])
        gateway = RecordingGateway()
        slave_config = slave("Changer", server, pollPeriod=50, sendDataOnlyOnChange=True,
                             timeseries=[{"tag": "a", "type": "16int", "functionCode": 3, "address": 0},
                                         {"tag": "b", "type": "16int", "functionCode": 3, "address": 1}])
        connector = ModbusConnector(gateway, {"name": "m", "master": {"slaves": [slave_config]}}, "modbus")
        connector.open()
        wait_until(lambda: connector.statistics()["polls"] >= 5, what="five polls")
        server.set("hr", 1, [3])
        polls = connector.statistics()["polls"]
        wait_until(lambda: connector.statistics()["polls"] >= polls + 5, what="five more polls")
        connector.close()
    finally:
        server.stop()
    # The connector hands the strategy over (changes, and everything each fullReportPeriodMs);
    # the gateway's report filter applies it.
    from thingsboard_gateway.conversion.report_filter import ReportFilter
    assert all(d["reportStrategy"].device == ("ON_CHANGE_OR_REPORT_PERIOD", 60000) for d in gateway.sent)
    reports, sent = ReportFilter(), []
    for d in gateway.sent:
        telemetry, _ = reports.apply("m", "Changer", "meter", d["telemetry"], {}, d["reportStrategy"])
        sent += [entry["values"] for entry in telemetry]
    assert len(gateway.sent) >= 10 and sent == [{"a": 1, "b": 2}, {"b": 3}]


def test_custom_uplink_and_downlink_converters_from_the_extensions_folder(monkeypatch):
    import os
    from thingsboard_gateway.connectors.modbus.connector import ModbusConnector
    from tests.support.gateway import ROOT
    monkeypatch.setenv("TB_GW_EXTENSIONS_DIR", os.path.join(ROOT, "tests", "extensions"))
    server = ModbusServer("tcp")
    connector = None
    try:
        server.set("hr", 0, [40, 2])
        gateway = RecordingGateway()
        slave_config = slave("Summed", server, pollPeriod=50, converter="SumUplinkConverter",
                             downlink_converter="DoubleDownlinkConverter",
                             timeseries=[{"tag": "a", "type": "16int", "functionCode": 3, "address": 0},
                                         {"tag": "b", "type": "16int", "functionCode": 3, "address": 1}],
                             rpc=[{"tag": "setB", "type": "16int", "functionCode": 6, "address": 1}])
        connector = ModbusConnector(gateway, {"name": "m", "master": {"slaves": [slave_config]}}, "modbus")
        connector.open()
        wait_until(lambda: any(d["telemetry"][0]["values"] == {"sum": 42} for d in gateway.sent))
        connector.server_side_rpc_handler({"device": "Summed", "data": {"id": 1, "method": "setB", "params": 5}})
        wait_until(lambda: gateway.replies, what="RPC reply")
        assert gateway.replies == [("Summed", 1, {"success": True})] and server.get("hr", 1) == [10]
        wait_until(lambda: any(d["telemetry"][0]["values"] == {"sum": 50} for d in gateway.sent))
    finally:
        if connector is not None:
            connector.close()
        server.stop()


def test_a_missing_custom_converter_is_one_line_in_check(tmp_path):
    from tests.support.gateway import run_cli
    folder = str(tmp_path)
    path = write_config(folder, 1883, connectors=[{"name": "Modbus", "type": "modbus", "configuration": "modbus.json"}],
                        files={"modbus.json": {"master": {"slaves": [{
                            "deviceName": "M", "type": "tcp", "host": "127.0.0.1", "port": 502,
                            "converter": "NoSuchConverter"}]}}})
    result = run_cli(["check", "--config", path])
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: modbus.json: master.slaves[0].converter: class NoSuchConverter not found; searched"), lines
