"""The gateway process against a real broker and the platform double: data, RPC round trips,
attribute requests and updates, statistics, shutdown."""
import os

import pytest

from tests.support.broker import Mosquitto
from tests.support.gateway import GatewayProcess, ROOT, simulator_entry, write_config
from tests.support.platform import PlatformDouble

EXTENSIONS = os.path.join(ROOT, "tests", "extensions")
SIMULATOR = {"devices": [{"name": "Sim A", "type": "thermometer", "pollPeriod": 200, "attributes": {"model": "M"},
                          "telemetry": [{"key": "seq", "counter": True}, {"key": "t", "min": 1.0, "max": 2.0}]}]}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One broker, platform double and gateway (simulator + probe) shared by this module."""
    folder = str(tmp_path_factory.mktemp("gw"))
    broker = Mosquitto(folder, "platform").start()
    platform = PlatformDouble(broker.port, attributes={"Probe Device": {"targetTemp": 21.5}})
    path = write_config(folder, broker.port,
                        connectors=[simulator_entry(),
                                    {"name": "Probe", "type": "probe", "class": "ProbeConnector",
                                     "configuration": "probe.json"}],
                        thingsboard={"statistics": {"enable": True, "statsSendPeriodInSeconds": 1}},
                        files={"simulator.json": SIMULATOR, "probe.json": {}})
    gateway = GatewayProcess(path, env={"TB_GW_EXTENSIONS_DIR": EXTENSIONS})
    try:
        yield platform, gateway
    finally:
        gateway.kill()
        platform.close()
        broker.stop()


def _rpc_answer(platform, request_id):
    return platform.wait_topic("v1/devices/me/rpc/response/%d" % request_id)


def test_simulated_data_arrives_with_connect(world):
    platform, gateway = world
    platform.wait_for(lambda msgs: len([1 for d, v, _ in platform.telemetry() if d == "Sim A"]) >= 3)
    assert {"device": "Sim A", "type": "thermometer"} in platform.on("v1/gateway/connect")
    # the gateway pages' device tabs: each device's connector, as client attributes
    assert platform.wait_topic("v1/gateway/attributes", lambda b: "connectorName" in b.get("Sim A", {}))["Sim A"] \
        == {"connectorName": "Simulator", "connectorType": "simulator"}
    assert platform.wait_topic("v1/gateway/attributes", lambda b: "Sim A" in b and "connectorName" not in b["Sim A"]) == {"Sim A": {"model": "M"}}


def test_gateway_ping(world):
    platform, _ = world
    assert _rpc_answer(platform, platform.gateway_rpc("gateway_ping")) == {"code": 200, "resp": "pong"}


def test_gateway_devices_and_version(world):
    platform, _ = world
    platform.wait_topic("v1/gateway/connect", lambda b: b["device"] == "Probe Device")
    devices = _rpc_answer(platform, platform.gateway_rpc("gateway_devices"))
    assert devices["resp"] == {"Sim A": "Simulator", "Probe Device": "Probe"}
    from thingsboard_gateway import __version__
    assert _rpc_answer(platform, platform.gateway_rpc("gateway_version"))["resp"]["current_version"] == __version__


def test_gateway_stats(world):
    platform, _ = world
    platform.wait_for(lambda msgs: len(platform.telemetry()) >= 2)
    stats = _rpc_answer(platform, platform.gateway_rpc("gateway_stats"))["resp"]
    assert stats["messages_sent"] >= 1 and stats["Simulator_state"] == "running"


def test_unknown_gateway_method_gets_an_error(world):
    platform, _ = world
    answer = _rpc_answer(platform, platform.gateway_rpc("gateway_fly"))
    assert answer["code"] == 404 and "gateway_fly" in answer["error"]


def test_device_rpc_round_trip_to_its_connector(world):
    platform, _ = world
    platform.wait_topic("v1/gateway/connect", lambda b: b["device"] == "Probe Device")
    request_id = platform.device_rpc("Probe Device", "echo", {"x": 1})
    reply = platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == request_id and "data" in b
                                and "method" not in b["data"])
    assert reply == {"device": "Probe Device", "id": request_id, "data": {"echo": {"x": 1}}}


def test_simulator_rpc_set_pins_a_value(world):
    platform, _ = world
    request_id = platform.device_rpc("Sim A", "set", {"key": "t", "value": 99})
    platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == request_id and b["data"] == {"success": True})
    assert platform.wait_for(lambda msgs: any(d == "Sim A" and v.get("t") == 99 for d, v, _ in platform.telemetry()))


def test_rpc_for_unknown_device_gets_an_error(world):
    platform, _ = world
    request_id = platform.device_rpc("Nobody", "echo")
    reply = platform.wait_topic("v1/gateway/rpc", lambda b: b.get("id") == request_id and "error" in b.get("data", {}))
    assert "Nobody" in reply["data"]["error"]


def test_attribute_request_round_trip(world):
    platform, _ = world
    request = platform.wait_topic("v1/gateway/attributes/request")
    assert request["device"] == "Probe Device" and request["key"] == "targetTemp" and request["client"] is False
    platform.wait_for(lambda msgs: ("Probe Device", {"targetTemp": 21.5}) in
                      [(d, v) for d, v, _ in platform.telemetry()])


def test_shared_attribute_update_reaches_connector(world):
    platform, _ = world
    platform.wait_topic("v1/gateway/connect", lambda b: b["device"] == "Probe Device")
    platform.shared_attributes("Probe Device", {"mode": "eco"})
    assert platform.wait_for(lambda msgs: any(v.get("updated_mode") == "eco" for d, v, _ in platform.telemetry()))


def test_statistics_are_reported(world):
    platform, _ = world
    stats = platform.wait_topic("v1/devices/me/telemetry", lambda b: b["values"]["messages_sent"] > 0)["values"]
    for key in ("devices_connected", "messages_received", "messages_sent", "events_queued",
                "Simulator_state", "Probe_state"):
        assert key in stats
    assert stats["Simulator_state"] == "running"


def test_sigterm_exits_zero_quickly(world):
    platform, gateway = world
    platform.wait_for(lambda msgs: len(platform.telemetry()) >= 2)
    code, seconds = gateway.terminate()
    assert code == 0, gateway.output()[-2000:]
    assert seconds < 10
    assert "Traceback" not in gateway.output()
