#!/usr/bin/env python3
"""Soak: a gateway whose failing connectors (one holding a socket, a file and a thread;
the real MQTT connector; the real Modbus connector) are each restarted 1,000 times and whose platform
connection is dropped 100 times (MQTT session takeover; reconnect backoff shortened by
config). File descriptors, threads and RSS of the gateway process must come back to
their baseline within a small bound. Minutes, not part of the test suite.

  python bench/soak_bench.py [--restarts 1000] [--drops 100] [--python PATH]

Prints one JSON line per phase and a summary; exits 1 when something leaked.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, listener, rss_mb  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402

CLIENT_ID = "soak-gateway"
BOUNDS = {"fds": 3, "threads": 2, "rss_mb": 3.0}


def sample(pid):
    rss = rss_mb(pid)
    return {"fds": len(os.listdir("/proc/%d/fd" % pid)), "threads": len(os.listdir("/proc/%d/task" % pid)),
            "rss_mb": round(rss, 1)}


def process_figures(pid, seconds=3.0):
    """The floor of fds and threads over `seconds` (connectors come and go while they
    restart: a leak raises the floor) and the last RSS."""
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(sample(pid))
        time.sleep(0.05)
    return {"fds": min(s["fds"] for s in samples), "threads": min(s["threads"] for s in samples),
            "rss_mb": samples[-1]["rss_mb"]}


class Watcher(object):
    """The platform side: counts the gateway's connects (each asks for session limits)
    and keeps its latest statistics."""

    def __init__(self, port):
        self.connects = 0
        self.stats = {}
        self.cond = threading.Condition()
        self.client = listener(port, "soak-watcher", [("v1/devices/me/rpc/request/+", 1),
                                                      ("v1/devices/me/telemetry", 1)], self._on_message)

    def _on_message(self, client, userdata, message):
        body = json.loads(message.payload)
        with self.cond:
            if message.topic.startswith("v1/devices/me/rpc/request/") and body.get("method") == "getSessionLimits":
                self.connects += 1
            elif message.topic == "v1/devices/me/telemetry":
                self.stats.update(body.get("values", body))
            self.cond.notify_all()

    def wait(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SystemExit("soak: condition not met in %.0f s (stats %s)" % (timeout, self.stats))
                self.cond.wait(remaining)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def take_over(port):
    """Connect with the gateway's client id: the broker drops the gateway's connection."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=CLIENT_ID)
    client.connect("127.0.0.1", port)
    client.loop_start()
    time.sleep(0.05)
    client.loop_stop()
    client.disconnect()


def write_config(folder, port):
    extensions = os.path.join(ROOT, "bench", "extensions")
    config = {"thingsboard": {"host": "127.0.0.1", "port": port,
                              "security": {"type": "accessToken", "accessToken": "SOAK", "clientId": CLIENT_ID},
                              "statistics": {"enable": True, "statsSendPeriodInSeconds": 1},
                              "sessionLimitsTimeoutMs": 200,
                              "reconnect": {"minDelay": 20, "maxDelay": 100, "jitter": 0}},
              "storage": {"type": "file", "data_folder_path": os.path.join(folder, "data")},
              "supervision": {"maxFailures": 1000000, "minDelay": 1, "maxDelay": 2},
              "connectors": [{"name": "Flaky", "type": "soak", "class": "FlakyConnector", "configuration": "flaky.json"},
                             {"name": "FlakyMqtt", "type": "soak", "class": "FlakyMqttConnector",
                              "configuration": "mqtt.json"},
                             {"name": "FlakyModbus", "type": "soak", "class": "FlakyModbusConnector",
                              "configuration": "modbus.json"},
                             {"name": "Simulator", "type": "simulator", "class": "SimulatorConnector",
                              "configuration": "simulator.json"}]}
    with open(os.path.join(folder, "tb_gateway.json"), "w") as f:
        json.dump(config, f)
    with open(os.path.join(folder, "flaky.json"), "w") as f:
        json.dump({"port": port}, f)
    with open(os.path.join(folder, "mqtt.json"), "w") as f:
        json.dump({"broker": {"host": "127.0.0.1", "port": port, "security": {"type": "anonymous"}},
                   "mapping": [{"topicFilter": "soak/+/data", "converter": {
                       "type": "json", "deviceInfo": {"deviceNameExpression": "${name}"},
                       "timeseries": [{"type": "integer", "key": "v", "value": "${v}"}]}}]}, f)
    with open(os.path.join(folder, "modbus.json"), "w") as f:  # a slave nobody answers for: connects fail
        json.dump({"master": {"slaves": [{"deviceName": "Nobody", "type": "tcp", "host": "127.0.0.1", "port": 1,
                                          "pollPeriod": 50, "timeout": 0.2, "timeseries": [
                                              {"tag": "x", "type": "16int", "functionCode": 3, "address": 0}]}]}}, f)
    with open(os.path.join(folder, "simulator.json"), "w") as f:
        json.dump({"devices": [{"name": "Soak %d" % i, "pollPeriod": 100,
                                "telemetry": [{"key": "seq", "counter": True}]} for i in range(5)]}, f)
    return os.path.join(folder, "tb_gateway.json"), extensions


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--restarts", type=int, default=1000)
    ap.add_argument("--drops", type=int, default=100)
    ap.add_argument("--python", default=sys.executable, help="interpreter that runs the gateway")
    args = ap.parse_args()
    folder = tempfile.mkdtemp(prefix="soak-")
    broker = Mosquitto(folder, "platform").start()
    watcher = Watcher(broker.port)
    path, extensions = write_config(folder, broker.port)
    env = dict(os.environ, PYTHONPATH=ROOT, TB_GW_EXTENSIONS_DIR=extensions + os.pathsep +
               os.path.join(ROOT, "extensions"))
    log = open(os.path.join(folder, "gateway.out"), "wb")
    gateway = subprocess.Popen([args.python, "-m", "thingsboard_gateway", "--config", path], env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    ok = True
    try:
        def restarts():  # the fewest of the three flaky connectors
            return min(watcher.stats.get(name + "_restarts", 0) for name in ("Flaky", "FlakyMqtt", "FlakyModbus"))

        watcher.wait(lambda: restarts() >= 20 and watcher.connects >= 1, 60)
        time.sleep(2)
        baseline = process_figures(gateway.pid)
        start = time.monotonic()
        print(json.dumps(dict(phase="baseline", restarts=restarts(), connects=watcher.connects, **baseline)))
        watcher.wait(lambda: restarts() >= 20 + args.restarts, 60 + args.restarts * 0.5)
        after_restarts = process_figures(gateway.pid)
        print(json.dumps(dict(phase="restarts", restarts=restarts(), seconds=round(time.monotonic() - start, 1),
                              **after_restarts)))
        start = time.monotonic()
        for _ in range(args.drops):
            before = watcher.connects
            take_over(broker.port)
            watcher.wait(lambda: watcher.connects > before, 30)
        time.sleep(2)
        after_drops = process_figures(gateway.pid)
        print(json.dumps(dict(phase="drops", connects=watcher.connects, seconds=round(time.monotonic() - start, 1),
                              **after_drops)))
        growth = {key: round(max(after_restarts[key], after_drops[key]) - baseline[key], 1) for key in BOUNDS}
        ok = all(growth[key] <= BOUNDS[key] for key in BOUNDS) and gateway.poll() is None
        print(json.dumps({"summary": "soak", "python": "%d.%d" % tuple(
            int(x) for x in subprocess.run([args.python, "-c", "import sys; print(*sys.version_info[:2])"],
                                           stdout=subprocess.PIPE, universal_newlines=True).stdout.split()),
                          "restarts": restarts(), "platform_drops": args.drops, "growth": growth, "bounds": BOUNDS,
                          "ok": ok}))
    finally:
        if gateway.poll() is None:
            gateway.terminate()
            gateway.wait(15)
        watcher.close()
        broker.stop()
        log.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
