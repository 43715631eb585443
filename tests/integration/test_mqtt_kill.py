"""The gateway SIGKILLed mid-stream with file storage and a persistent device-broker
session, then restarted: every device message is delivered (QoS 1 device messages are
acknowledged only after the storage commit)."""
import json
import threading
import time

import pytest

from tests.support.waiting import wait_until
from tests.support.devices import seq_connector_file
from tests.support.gateway import GatewayProcess, write_config

pytestmark = pytest.mark.slow

DEVICES = 10
PER_DEVICE = 300


def test_sigkill_with_persistent_session_loses_nothing(tmp_path, relay_peers):
    folder = str(tmp_path)
    platform, devices = relay_peers.platform, relay_peers.devices
    storage = {"type": "file", "data_folder_path": folder + "/data"}
    path = write_config(folder, relay_peers.platform_broker.port,
                        connectors=[{"name": "MQTT", "type": "mqtt", "configuration": "mqtt.json"}],
                        storage=storage,
                        files={"mqtt.json": seq_connector_file(relay_peers.devices_broker.port, "gw-kill-test")})
    gateways = [GatewayProcess(path)]
    try:
        def seen():
            return {(d, v["seq"]) for d, v, _ in platform.telemetry()}

        # First start creates the session; until the gateway subscribed, messages go nowhere.
        wait_until(lambda: devices.publish("sensor/warmup/data", {"serialNumber": "warmup", "seq": 0}) or
                   ("warmup", 0) in seen(), 20, "the gateway's subscription", interval=0.3)

        def publish_all():
            for seq in range(1, PER_DEVICE + 1):
                for d in range(DEVICES):
                    devices.client.publish("sensor/D%d/data" % d, json.dumps({"serialNumber": "D%d" % d, "seq": seq}),
                                           qos=1)
                time.sleep(0.005)

        publisher = threading.Thread(target=publish_all)
        publisher.start()
        platform.wait_for(lambda m: len(seen()) > 300)
        gateways[0].kill()                                # SIGKILL mid-stream
        time.sleep(1.0)
        gateways.append(GatewayProcess(path))             # same session, same storage
        publisher.join(60)
        expected = {("D%d" % d, seq) for d in range(DEVICES) for seq in range(1, PER_DEVICE + 1)}
        platform.wait_for(lambda m: expected <= seen(), timeout=60)
        code, _ = gateways[1].terminate()
        assert code == 0
    finally:
        for g in gateways:
            g.kill()
