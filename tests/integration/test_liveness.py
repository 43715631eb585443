"""Liveness as a whole: a thread the data path needs that is stuck (a storage write that
never returns) is logged with its stack and ends the systemd watchdog's feeding; a
connector thread that is stuck (a custom converter that never returns) gets that
connector restarted while the others keep delivering. Real gateway processes, a real
broker, systemd's notify socket played by the test."""
import json
import os
import socket
import threading
import time

import pytest

from tests.support import fsync_shim
from tests.support.gateway import ROOT, GatewayProcess, simulator_entry, write_config
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


class NotifySocket(object):
    """systemd's NOTIFY_SOCKET: records (time, state) of every datagram."""

    def __init__(self, folder):
        self.path = os.path.join(folder, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.received = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            self.received.append((time.monotonic(), data.decode()))

    def pings(self, since=0.0):
        return [at for at, state in self.received if "WATCHDOG=1" in state and at >= since]

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.mark.skipif(fsync_shim.compiler() is None, reason="no C compiler for the fsync shim")
def test_a_storage_write_that_never_returns_is_reported_and_starves_the_watchdog(tmp_path, platform, broker):
    folder = str(tmp_path)
    shim = fsync_shim.build_shim(folder)
    block = os.path.join(folder, "block-fsync")
    simulator = {"devices": [{"name": "Sim", "pollPeriod": 50, "telemetry": [{"key": "seq", "counter": True}]}]}
    path = write_config(folder, broker.port, connectors=[simulator_entry()], files={"simulator.json": simulator},
                        storage={"type": "file", "data_folder_path": folder + "/data"},
                        extra={"supervision": {"dataPathStuckMs": 2000}})
    notify = NotifySocket(folder)
    gateway = GatewayProcess(path, env={"LD_PRELOAD": shim, "FSYNC_BLOCK_FILE": block,
                                        "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"})
    try:
        wait_until(lambda: len(notify.pings()) >= 3, 20, "watchdog pings while healthy")
        platform.wait_for(lambda m: platform.latest("Sim"))
        open(block, "w").close()                                  # every fsync now waits
        wait_until(lambda: "Thread storage-writer made no progress" in gateway.output(), 20, "the stuck report")
        reported = time.monotonic()
        time.sleep(3.0)
        assert notify.pings(since=reported) == []                 # not fed while it is stuck
        output = gateway.output()
        assert output.count("Thread storage-writer made no progress") == 1   # once, with its stack:
        assert "in commit" in output and "fsync" in output
        os.remove(block)                                          # the card answers again
        wait_until(lambda: "Thread storage-writer moves again" in gateway.output(), 20, "recovery")
        wait_until(lambda: notify.pings(since=time.monotonic() - 0.5), 10, "pings again")
        seq = platform.latest("Sim")["seq"]
        platform.wait_for(lambda m: platform.latest("Sim")["seq"] > seq + 10)  # and data flows
        code, _ = gateway.terminate()
        assert code == 0
        assert "Traceback" not in gateway.output()
    finally:
        if os.path.exists(block):
            os.remove(block)
        gateway.kill()
        notify.close()


def test_a_converter_that_never_returns_restarts_its_connector_and_the_others_deliver(tmp_path, relay_peers):
    folder = str(tmp_path)
    platform, devices = relay_peers.platform, relay_peers.devices
    mqtt = {"broker": {"host": "127.0.0.1", "port": relay_peers.devices_broker.port, "clientId": "gw-hang-test",
                       "version": 4, "cleanSession": False, "security": {"type": "anonymous"}},
            "mapping": [{"topicFilter": "sensor/+/data", "subscriptionQos": 1,
                         "converter": {"type": "custom", "extension": "HangingConverter"}}]}
    simulator = {"devices": [{"name": "Sim", "pollPeriod": 100, "telemetry": [{"key": "seq", "counter": True}]}]}
    path = write_config(folder, relay_peers.platform_broker.port,
                        connectors=[{"name": "Stuck", "type": "mqtt", "configuration": "mqtt.json"}, simulator_entry()],
                        files={"mqtt.json": mqtt, "simulator.json": simulator},
                        extra={"supervision": {"connectorStuckMs": 2000, "minDelay": 200, "maxDelay": 1000}})
    extensions = os.pathsep.join([os.path.join(ROOT, "tests", "extensions"), os.path.join(ROOT, "extensions")])
    gateway = GatewayProcess(path, env={"TB_GW_EXTENSIONS_DIR": extensions})
    try:
        def seqs(device):
            return {v["seq"] for d, v, _ in platform.telemetry() if d == device}

        def send(seq, hang=False):
            devices.publish("sensor/M1/data", json.dumps({"serialNumber": "M1", "seq": seq, "hang": hang}))

        wait_until(lambda: send(0) or 0 in seqs("M1"), 20, "the MQTT connector's subscription", interval=0.3)
        send(1, hang=True)                                         # its converter never returns
        for seq in range(2, 6):
            send(seq)                                              # wait behind it, unacknowledged
        stuck_at = time.monotonic()
        simulated = len(seqs("Sim"))
        wait_until(lambda: "Restarting connector Stuck" in gateway.output(), 30, "the restart")
        assert len(seqs("Sim")) > simulated + 10                   # the other connector kept delivering
        for seq in range(6, 9):
            send(seq)
        # The new instance gets what the broker kept (QoS 1, persistent session): nothing lost.
        wait_until(lambda: set(range(9)) <= seqs("M1"), 30, "every message of the restarted connector")
        output = gateway.output()
        assert "Connector Stuck: thread connector:Stuck made no progress" in output
        assert "hanging_converter.py" in output                    # its stack says where
        assert time.monotonic() - stuck_at < 30
        code, _ = gateway.terminate()
        assert code == 0                                           # the stuck thread does not hold the exit
        assert "Traceback" not in gateway.output()
    finally:
        gateway.kill()
