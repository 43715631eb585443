"""The gateway SIGKILLed mid-stream with durable storage, then restarted: everything it had
committed is delivered, per device in order, re-sent at most once."""
import json
import os
import time

import pytest

from tests.support.gateway import GatewayProcess, run_cli, simulator_entry, write_config

pytestmark = pytest.mark.slow

DEVICES = ["Kill %d" % i for i in range(3)]
SIMULATOR = {"devices": [{"name": name, "pollPeriod": 20, "telemetry": [{"key": "seq", "counter": True}]}
                         for name in DEVICES]}


def delivered(platform):
    per = {d: [] for d in DEVICES}
    for device, values, _ in platform.telemetry():
        if device in per:
            per[device].append(values["seq"])
    return per


@pytest.mark.parametrize("storage_type", ["file", "sqlite"])
def test_sigkill_mid_stream_then_restart_delivers_everything(tmp_path, broker, platform, storage_type):
    folder = str(tmp_path)
    storage = {"type": storage_type, "data_folder_path": os.path.join(folder, "data"),
               "data_file_path": os.path.join(folder, "data", "data.db"), "max_records_per_file": 200,
               "max_read_records_count": 20}
    # A slow platform link (2 messages/s) so a backlog builds up in storage.
    path = write_config(folder, broker.port, connectors=[simulator_entry()], storage=storage,
                        thingsboard={"deviceMessagesRateLimits": "2:1", "maxPayloadSizeBytes": 1000},
                        files={"simulator.json": SIMULATOR})
    first = GatewayProcess(path)
    try:
        platform.wait_for(lambda msgs: all(len(v) >= 5 for v in delivered(platform).values()))
        time.sleep(2.5)
        first.kill()                                  # SIGKILL
    finally:
        first.kill()
    inspect = run_cli(["storage", "inspect", "--config", path])
    assert inspect.returncode == 0, inspect.stderr
    waiting = int(inspect.stdout.split("records waiting:")[1].split()[0])
    assert waiting > 50, inspect.stdout              # the kill left a real backlog behind

    # Restart without the simulator (its counters would start again) and without the limit.
    with open(path) as f:
        config = json.load(f)
    config["connectors"] = []
    config["thingsboard"].pop("deviceMessagesRateLimits")
    config["thingsboard"]["statistics"] = {"enable": True, "statsSendPeriodInSeconds": 1}
    with open(path, "w") as f:
        json.dump(config, f)
    second = GatewayProcess(path)
    try:
        # The restarted gateway has sent (and had acknowledged) everything that was waiting.
        platform.wait_topic("v1/devices/me/telemetry", lambda b: b["values"]["messages_sent"] >= waiting
                            and b["values"]["events_queued"] == 0, timeout=60)
        code, _ = second.terminate()
        assert code == 0
    finally:
        second.kill()
    for device, seqs in delivered(platform).items():
        unique = sorted(set(seqs))
        assert unique == list(range(1, len(unique) + 1)), "gap for %s" % device
        assert len(seqs) - len(unique) <= 40, "too many re-sent for %s" % device
