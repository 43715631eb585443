"""Never stuck: a link to the platform that swallows every packet while the TCP connection
stays open (a middlebox, a transport dropping QoS 1 publishes without PUBACKs) costs one
ack timeout, a reconnect and a re-send, not the session: the gateway, relaying an MQTT
device at 300 msg/s into file storage, gets a new platform session soon after the link
works again, and everything the device sent arrives."""
import time

import pytest

from tests.support.devices import PacedPublisher, seq_connector_file
from tests.support.gateway import GatewayProcess, write_config
from tests.support.proxy import MqttProxy
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

ACK_TIMEOUT_MS = 4000
MAX_BACKOFF_MS = 3000
RATE = 300
HOLE = 20.0


def test_a_link_that_swallows_everything_for_20s_gets_a_new_session_and_loses_nothing(tmp_path, relay_peers):
    folder = str(tmp_path)
    platform, devices = relay_peers.platform, relay_peers.devices
    proxy = MqttProxy(relay_peers.platform_broker.port)
    path = write_config(folder, proxy.port,
                        connectors=[{"name": "MQTT", "type": "mqtt", "configuration": "mqtt.json"}],
                        storage={"type": "file", "data_folder_path": folder + "/data"},
                        thingsboard={"publishAckTimeoutMs": ACK_TIMEOUT_MS,
                                     "reconnect": {"minDelay": 1000, "maxDelay": MAX_BACKOFF_MS}},
                        files={"mqtt.json": seq_connector_file(relay_peers.devices_broker.port, "gw-stuck-test")})
    gateway = GatewayProcess(path)
    publisher = None
    try:
        def seen():
            return {v["seq"] for d, v, _ in platform.telemetry() if d == "S1"}

        wait_until(lambda: devices.publish("sensor/S1/data", {"serialNumber": "S1", "seq": 0}) or 0 in seen(), 20,
                   "the gateway's subscription", interval=0.3)
        publisher = PacedPublisher(devices.client, RATE)
        wait_until(lambda: len(seen()) > 3 * RATE, 20, "delivery before the hole")

        proxy.swallow()
        time.sleep(HOLE)
        swallowed_at_end = proxy.swallowed
        received_before = len(platform.messages)
        proxy.restore()
        restored = time.monotonic()

        # A new session: at most one ack timeout (or one handshake timeout) and one backoff
        # delay after the link works again; the margin is for a loaded machine.
        wait_until(lambda: len(platform.messages) > received_before, 3 * (ACK_TIMEOUT_MS + MAX_BACKOFF_MS) / 1000.0,
                   "delivery after the link works again")
        resumed_after = time.monotonic() - restored
        time.sleep(3)
        publisher.stop()
        expected = set(range(publisher.sent + 1))
        wait_until(lambda: expected <= seen(), 60, "every message the device sent")

        code, _ = gateway.terminate()
        output = gateway.output()
        assert code == 0, output[-3000:]
        assert swallowed_at_end > 10                            # the hole was real
        assert "No PUBACK from the platform" in output          # one clear line said why it reconnected
        assert "Traceback" not in output
        print("delivery resumed %.1f s after the link came back; %d messages" % (resumed_after, publisher.sent))
    finally:
        if publisher is not None:
            publisher.stop()
        gateway.kill()
        proxy.close()
