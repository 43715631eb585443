"""The gateway as a Modbus slave (upstream's `slave` section), in a gateway process: a
pymodbus 2.5 sync client is the master over TCP, UDP and RTU (a socat pty pair); the
platform double sets attributes and sends RPCs."""
import copy
import os
import shutil
import socket
import struct
import threading

import pytest
from pymodbus.client.sync import ModbusSerialClient, ModbusTcpClient, ModbusUdpClient
from pymodbus.constants import Endian
from pymodbus.payload import BinaryPayloadBuilder

from tests.support.broker import free_port
from tests.support.gateway import write_config
from tests.support.serial_line import pty_pair
from tests.support.upstream import upstream_config
from tests.support.waiting import wait_until

NAME = "Modbus Slave Example"


def slave_only(kind="tcp", port=None, **changes):
    """Upstream's modbus.json with only its `slave` section, reported every 200 ms."""
    config = upstream_config("modbus.json")
    slave = copy.deepcopy(config["slave"])
    slave.update({"type": kind, "port": port or free_port(), "pollPeriod": 200, "sendDataToThingsBoard": True})
    slave.update(changes)
    return {"name": "Modbus server", "slave": slave}


def little(method, value):
    """The registers a pymodbus client writes for `value` in LITTLE byte and word order."""
    builder = BinaryPayloadBuilder(byteorder=Endian.Little, wordorder=Endian.Little)
    getattr(builder, method)(value)
    return builder.to_registers()


@pytest.fixture
def served(tmp_path, broker, platform, gateways):
    """start(file) -> the gateway process, once its slave is listening."""
    def start(connector_file, wait=True):
        path = write_config(str(tmp_path), broker.port, files={"modbus.json": connector_file},
                            connectors=[{"name": "Modbus", "type": "modbus", "configuration": "modbus.json"}])
        log = os.path.join(str(tmp_path), "gateway.out")
        before = open(log).read().count(" serving ") if os.path.exists(log) else 0  # a restart appends
        gateway = gateways(path)
        if wait:
            wait_until(lambda: gateway.output().count(" serving ") > before, 20, "the slave to listen")
        return gateway
    return start


def test_upstream_slave_section_over_tcp(served, platform):
    config = slave_only()
    port = config["slave"]["port"]
    gateway = served(config)
    master = ModbusTcpClient("127.0.0.1", port=port, timeout=3)
    try:
        # Every entry initialised with its value, encoded as a write with the slave's orders would be.
        assert master.read_holding_registers(2, 1, unit=1).registers == little("add_16bit_int", 12334)
        assert master.read_holding_registers(29, 2, unit=1).registers == little("add_32bit_int", 1243)
        assert master.read_holding_registers(31, 1, unit=1).registers == little("add_16bit_int", 22)
        assert master.read_holding_registers(1, 1, unit=1).registers == [struct.unpack(">H", b"ON")[0]]  # not swapped
        assert master.read_coils(5, 1, unit=1).bits[0] is False
        # Reported as attributes and telemetry of the device, connected first with its type.
        connect = platform.wait_topic("v1/gateway/connect", lambda b: b.get("device") == NAME, 20)
        assert connect["type"] == "default"
        platform.wait_for(lambda m: platform.latest(NAME).get("smm") == 12334, 20)
        platform.wait_topic("v1/gateway/attributes", lambda b: b.get(NAME, {}).get("sm") == "ON")
        # A master's write reaches ThingsBoard within a poll period.
        master.write_register(2, little("add_16bit_int", -7)[0], unit=1)
        platform.wait_for(lambda m: platform.latest(NAME).get("smm") == -7, 5)
        # A shared attribute is written with the full width of its type (32int: two registers).
        platform.shared_attributes(NAME, {"shared_attribute_write": 99999})
        wait_until(lambda: master.read_holding_registers(29, 2, unit=1).registers == little("add_32bit_int", 99999),
                   10, "the attribute in registers 29-30")
        # RPC: a write entry answers with its params, an unknown method with an error.
        request = platform.device_rpc(NAME, "setValue", 55)
        reply = platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == request and "method" not in b["data"])
        assert reply["data"] == {"result": {"value": 55}}
        assert master.read_holding_registers(31, 1, unit=1).registers == little("add_16bit_int", 55)
        request = platform.device_rpc(NAME, "noSuchMethod", 1)
        reply = platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == request and "method" not in b["data"])
        assert "error" in reply["data"]
        # Outside the block: exception 2; the block does not grow; the gateway goes on.
        assert master.read_holding_registers(500, 2, unit=1).exception_code == 2
        assert master.write_register(32, 1, unit=1).exception_code == 2
        assert master.read_holding_registers(0, 2, unit=1).exception_code == 2  # the block starts at 1
        assert master.read_holding_registers(32, 1, unit=1).exception_code == 2
        assert master.read_input_registers(0, 1, unit=1).exception_code == 2  # no input registers configured
    finally:
        master.close()
    code, _ = gateway.terminate()
    out = gateway.output()
    assert code == 0 and "Traceback" not in out, out[-3000:]


def test_hostile_masters_leave_it_up_and_platform_traffic_flowing(served, platform):
    config = slave_only()
    port = config["slave"]["port"]
    gateway = served(config)
    platform.wait_for(lambda m: platform.latest(NAME).get("smm") == 12334, 20)
    master = ModbusTcpClient("127.0.0.1", port=port, timeout=3)
    try:
        assert master.read_holding_registers(1, 2000, unit=1).isError()  # oversized: refused, not served
        raw = socket.create_connection(("127.0.0.1", port), 3)
        raw.sendall(b"\x00\x01\x00\x00\x00\x02\x01\x55")  # function 0x55 does not exist
        answer = raw.recv(64)
        assert answer[7] == 0xD5 and answer[8] == 1  # exception 1: illegal function
        raw.sendall(os.urandom(3000) + b"\xff" * 3000)  # garbage
        raw.close()
        # 200 masters at once, each asking once: every one is answered.
        answers = []
        lock = threading.Lock()

        def one_master():
            client = ModbusTcpClient("127.0.0.1", port=port, timeout=10)
            try:
                result = client.read_holding_registers(2, 1, unit=1)
                with lock:
                    answers.append(not result.isError())
            finally:
                client.close()
        threads = [threading.Thread(target=one_master) for _ in range(200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert answers.count(True) == 200
        seen = len(platform.telemetry())
        platform.wait_for(lambda m: len(platform.telemetry()) >= seen + 3, 10)  # reports go on
        assert master.read_holding_registers(2, 1, unit=1).registers == little("add_16bit_int", 12334)
    finally:
        master.close()
    code, _ = gateway.terminate()
    out = gateway.output()
    assert code == 0 and "Traceback" not in out, out[-3000:]
    assert out.count("malformed") <= 1 and out.count("Modbus exception 3") <= 1


def test_unit_id_broadcast_and_restart_on_the_same_port(served, platform):
    config = slave_only(unitId=5, sendDataToThingsBoard=False)
    port = config["slave"]["port"]
    gateway = served(config)
    master = ModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)
    try:
        assert master.read_holding_registers(2, 1, unit=5).registers == little("add_16bit_int", 12334)
        assert master.read_holding_registers(2, 1, unit=6).isError()  # another unit: no answer
        master.write_register(2, 4321, unit=0)  # broadcast: applied, not answered
        wait_until(lambda: master.read_holding_registers(2, 1, unit=5).registers == [4321], 5, "the broadcast write")
    finally:
        master.close()
    code, _ = gateway.terminate()
    assert code == 0
    assert platform.latest(NAME) == {}  # sendDataToThingsBoard false: served, never reported
    again = served(config)  # the address is reused at once; the configured values are served again
    master = ModbusTcpClient("127.0.0.1", port=port, timeout=3)
    try:
        assert master.read_holding_registers(2, 1, unit=5).registers == little("add_16bit_int", 12334)
    finally:
        master.close()
    code, _ = again.terminate()
    assert code == 0 and "Address already in use" not in again.output()


def test_over_udp(served, platform):
    config = slave_only("udp")
    gateway = served(config)
    master = ModbusUdpClient("127.0.0.1", port=config["slave"]["port"], timeout=3)
    try:
        assert master.read_holding_registers(29, 2, unit=1).registers == little("add_32bit_int", 1243)
        master.write_registers(29, little("add_32bit_int", -5), unit=1)
        assert master.read_holding_registers(29, 2, unit=1).registers == little("add_32bit_int", -5)
    finally:
        master.close()
    platform.wait_for(lambda m: platform.latest(NAME).get("smm") == 12334, 20)
    code, _ = gateway.terminate()
    assert code == 0 and "Traceback" not in gateway.output()


@pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed: no pseudo-terminal pair for RTU")
def test_over_rtu_the_reports_read_memory_not_the_port(served, platform, tmp_path):
    base = "/tmp/tbgw-slave-%d-%d" % (os.getpid(), free_port())
    socat = pty_pair(base + "-master", base + "-gw")
    try:
        config = slave_only("serial", port=base + "-gw", method="rtu", baudrate=19200)
        gateway = served(config)
        master = ModbusSerialClient(method="rtu", port=base + "-master", baudrate=19200, timeout=2)
        try:
            assert master.connect()
            assert master.read_holding_registers(2, 1, unit=1).registers == little("add_16bit_int", 12334)
            master.write_register(31, 9, unit=1)
            platform.wait_for(lambda m: platform.latest(NAME).get("smm") == 12334, 20)
            assert master.read_holding_registers(31, 1, unit=1).registers == [9]
        finally:
            master.close()
        code, _ = gateway.terminate()
        assert code == 0 and "Traceback" not in gateway.output()
    finally:
        socat.kill()
        socat.wait()


def test_a_file_with_only_a_slave_section_passes_check(tmp_path):
    from tests.support.gateway import run_cli
    path = write_config(str(tmp_path), free_port(), files={"modbus.json": slave_only()},
                        connectors=[{"name": "Modbus", "type": "modbus", "configuration": "modbus.json"}])
    result = run_cli(["check", "--config", path])
    assert result.returncode == 0, result.stderr
    assert "serving as unit 0 on tcp" in result.stdout and "warning" not in result.stdout



def test_an_idle_master_is_cut_and_others_are_served(open_connector):
    from tests.support.recorder import RecordingGateway
    from thingsboard_gateway.connectors.modbus.connector import ModbusConnector
    config = slave_only(connectionTimeoutSec=1)
    port = config["slave"]["port"]
    connector, gateway = open_connector(ModbusConnector, config, "modbus", RecordingGateway())
    wait_until(lambda: connector.is_connected(), 10, "the slave to listen")
    idle = socket.create_connection(("127.0.0.1", port), 5)
    idle.settimeout(5)
    master = ModbusTcpClient("127.0.0.1", port=port, timeout=3)
    try:
        assert master.read_holding_registers(2, 1, unit=1).registers == little("add_16bit_int", 12334)
        assert idle.recv(10) == b""  # closed by the slave after a second of silence
    finally:
        idle.close()
        master.close()
    assert connector.statistics()["failures_server_idle"] >= 1  # (the master, silent meanwhile, too)
