"""A platform outage mid-stream: records wait and go out after reconnect, none lost,
in order per device."""
import time

import pytest

from tests.support.broker import Mosquitto, wait_port
from tests.support.gateway import GatewayProcess, simulator_entry, write_config
from tests.support.platform import PlatformDouble

pytestmark = pytest.mark.slow

DEVICES = ["Dev %d" % i for i in range(3)]
SIMULATOR = {"devices": [{"name": name, "pollPeriod": 50, "telemetry": [{"key": "seq", "counter": True}]}
                         for name in DEVICES]}


def first_occurrences(platform, device):
    seen, order = set(), []
    for d, values, _ in platform.telemetry():
        if d == device and values["seq"] not in seen:
            seen.add(values["seq"])
            order.append(values["seq"])
    return order


def test_broker_down_10s_loses_nothing_and_keeps_order(tmp_path):
    folder = str(tmp_path)
    persistence = "persistence true\npersistence_location %s/\nautosave_interval 1\n" % folder
    broker = Mosquitto(folder, "platform", extra=persistence)
    broker.start()
    platform = gateway = None
    try:
        platform = PlatformDouble(broker.port, persistent=True)
        path = write_config(folder, broker.port, connectors=[simulator_entry()], files={"simulator.json": SIMULATOR})
        gateway = GatewayProcess(path)
        platform.wait_for(lambda msgs: all(len(first_occurrences(platform, d)) >= 10 for d in DEVICES))

        broker.stop()
        assert wait_port(broker.port, up=False)
        time.sleep(10)
        broker.proc = None
        reconnected_at = time.time()
        broker.start()

        # Data produced during the outage (~200 per device) must arrive.
        platform.wait_for(lambda msgs: all(len(first_occurrences(platform, d)) >= 260 for d in DEVICES), timeout=60)
        # Every known device is announced again after the reconnect.
        announced = {b["device"] for t, topic, b in platform.messages
                     if topic == "v1/gateway/connect" and t >= reconnected_at}
        assert announced == set(DEVICES)
        code, _ = gateway.terminate()
        assert code == 0
        for device in DEVICES:  # a prefix check: what is still on its way cannot make a gap
            order = first_occurrences(platform, device)
            assert order == list(range(1, len(order) + 1)), "gap or reordering for %s" % device
        assert "Traceback" not in gateway.output()
    finally:
        if gateway is not None:
            gateway.kill()
        if platform is not None:
            platform.close()
        broker.stop()
