#!/usr/bin/env python3
"""Memory after work: the relay job of the team's relay benchmark (devices publish JSON on
a devices broker, the gateway relays it to v1/gateway/telemetry on a platform broker), with
the gateway's RSS sampled before the work, right after it and after `--idle` s of idle,
ours against the floor (the relay benchmark's own bare paho relay, `--relay` mode, run from
its file) in the same invocation, on each interpreter side by side.

Each process runs at `--cpu-quota` percent of one core with its byte code compiled, as an
installed board has it (the .deb compiles it in postinst): this shell's
PYTHONDONTWRITEBYTECODE is dropped for the children and the repository is compiled first.

  export TB_GW_RELAY_BENCH=/path/to/mqtt_relay_bench.py   # or --bench PATH
  python bench/memory_bench.py [--cpu-quota 25] [--rate 1000] [--messages 20000] [--idle 10]
  python bench/memory_bench.py --python .venv37/bin/python --storage file

Prints one JSON line per run and a summary per interpreter: RSS (and its anonymous part)
before, right after and after idle, the peak, msgs/s; ours minus the floor after idle.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (ROOT, CpuQuota, compile_package, compiled_env, interpreters, listener,  # noqa: E402
                    python_version, status_mb, stop_process)
from tests.support.broker import Mosquitto  # noqa: E402

LIMITS = {"maxPayloadSize": 65536, "maxInflightMessages": 1000, "rateLimits": {}, "gatewayRateLimits": {}}


def memory(pid):
    """VmRSS, VmHWM and RssAnon of a process, in MB."""
    return status_mb(pid, "VmRSS", "VmHWM", "RssAnon")


def steady(pid, seconds=1.0):
    """The median of RSS samples over `seconds` (one sample can catch a passing peak)."""
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(memory(pid))
        time.sleep(0.1)
    samples.sort(key=lambda s: s["VmRSS"])
    return samples[len(samples) // 2]


class Platform(object):
    """Counts the distinct messages delivered; answers getSessionLimits."""

    def __init__(self, port, expected):
        self.expected = expected
        self.seen = set()
        self.done = threading.Event()
        self.client = listener(port, "memory-platform", [("v1/gateway/#", 1), ("v1/devices/me/rpc/request/+", 1)],
                               self._on_message)

    def _on_message(self, client, userdata, msg):
        if msg.topic.startswith("v1/devices/me/rpc/request/"):
            request_id = msg.topic.rsplit("/", 1)[1]
            client.publish("v1/devices/me/rpc/response/" + request_id, json.dumps(LIMITS), qos=1)
            return
        if msg.topic != "v1/gateway/telemetry":
            return
        for device, entries in json.loads(msg.payload).items():
            for entry in entries if isinstance(entries, list) else [entries]:
                seq = entry.get("values", entry).get("seq")
                if seq is not None:
                    self.seen.add(int(seq))
        if len(self.seen) >= self.expected:
            self.done.set()

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def write_configs(folder, devices_port, platform_port, storage):
    """tb_gateway.json and mqtt.json in upstream's format, as the relay benchmark writes them."""
    store = {"type": "memory", "read_records_count": 100, "max_records_count": 1000000}
    if storage == "file":
        store = {"type": "file", "data_folder_path": os.path.join(folder, "data") + "/", "max_file_count": 100,
                 "max_read_records_count": 100, "max_records_per_file": 10000}
    gateway = {"thingsboard": {"host": "127.0.0.1", "port": platform_port, "remoteShell": False,
                               "remoteConfiguration": False, "qos": 1,
                               "statistics": {"enable": False, "statsSendPeriodInSeconds": 3600},
                               "security": {"type": "accessToken", "accessToken": "BENCH_TOKEN"},
                               "checkingDeviceActivity": {"checkDeviceInactivity": False}},
               "storage": store,
               "connectors": [{"type": "mqtt", "name": "MQTT Bench", "configuration": "mqtt.json"}]}
    mapping = {"broker": {"name": "Devices", "host": "127.0.0.1", "port": devices_port, "clientId": "memory_gw",
                          "version": 3, "security": {"type": "anonymous"}},
               "mapping": [{"topicFilter": "sensor/+/data", "subscriptionQos": 1, "converter": {
                   "type": "json",
                   "deviceInfo": {"deviceNameExpressionSource": "message", "deviceNameExpression": "${serialNumber}",
                                  "deviceProfileExpressionSource": "constant",
                                  "deviceProfileExpression": "bench-sensor"},
                   "attributes": [{"type": "string", "key": "model", "value": "${model}"}],
                   "timeseries": [{"type": "double", "key": "temperature", "value": "${temperature}"},
                                  {"type": "double", "key": "humidity", "value": "${humidity}"},
                                  {"type": "integer", "key": "seq", "value": "${seq}"},
                                  {"type": "double", "key": "sent", "value": "${sent}"}]}}]}
    with open(os.path.join(folder, "tb_gateway.json"), "w") as f:
        json.dump(gateway, f)
    with open(os.path.join(folder, "mqtt.json"), "w") as f:
        json.dump(mapping, f)
    return os.path.join(folder, "tb_gateway.json")


def publish(port, messages, rate, devices=100):
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="memory-devices")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    start = time.time()
    for i in range(messages):
        device = "Sensor-%04d" % (i % devices)
        client.publish("sensor/%s/data" % device, json.dumps({
            "serialNumber": device, "model": "TH-100", "temperature": 20 + (i % 100) / 10.0,
            "humidity": 40 + (i % 50), "seq": i, "sent": time.time()}), qos=1)
        delay = start + (i + 1) / float(rate) - time.time()
        if delay > 0:
            time.sleep(delay)
    return client, start


def run(python, who, args):
    work = tempfile.mkdtemp(prefix="tbgw-memory-")
    devices, platform = Mosquitto(work, "devices").start(), Mosquitto(work, "platform").start()
    process = quota = counter = sender = None
    try:
        if who == "ours":
            config = write_configs(work, devices.port, platform.port, args.storage)
            command = [python, "-m", "thingsboard_gateway", "--config", config]
        else:
            command = [python, args.bench, "--relay", str(devices.port), str(platform.port)]
        env = compiled_env(PYTHONPATH=ROOT)
        quota = CpuQuota(args.cpu_quota) if args.cpu_quota else None
        with open(os.path.join(work, who + ".log"), "wb") as log:
            process = subprocess.Popen(command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
        if quota:
            quota.add(process.pid)
        counter = Platform(platform.port, args.messages)
        time.sleep(args.settle)
        if process.poll() is not None:
            with open(os.path.join(work, who + ".log"), errors="replace") as log:
                raise SystemExit("%s exited early:\n%s" % (who, log.read()[-3000:]))
        before = steady(process.pid)
        sender, start = publish(devices.port, args.messages, args.rate)
        counter.done.wait(args.timeout)
        elapsed = time.time() - start
        after = steady(process.pid)
        time.sleep(args.idle)
        idle = steady(process.pid, 2.0)
        return {"who": who, "python": python_version(python), "storage": args.storage, "rate": args.rate,
                "delivered": len(counter.seen), "lost": args.messages - len(counter.seen),
                "msgs_per_s": round(len(counter.seen) / elapsed, 1),
                "rss_before_mb": round(before["VmRSS"], 1), "rss_after_mb": round(after["VmRSS"], 1),
                "rss_idle_after_mb": round(idle["VmRSS"], 1), "peak_rss_mb": round(idle["VmHWM"], 1),
                "anon_before_mb": round(before["RssAnon"], 1), "anon_idle_after_mb": round(idle["RssAnon"], 1)}
    finally:
        for client in (sender,):
            if client is not None:
                client.loop_stop()
                client.disconnect()
        if counter is not None:
            counter.close()
        if process is not None:
            stop_process(process)
        if quota:
            quota.close()
        devices.stop()
        platform.stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=os.environ.get("TB_GW_RELAY_BENCH"),
                    help="path of mqtt_relay_bench.py (its --relay mode is the floor)")
    ap.add_argument("--python", action="append", help="interpreter(s) to run on (default: this one and .venv37)")
    ap.add_argument("--cpu-quota", type=int, default=25)
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--idle", type=float, default=10.0)
    ap.add_argument("--settle", type=float, default=5.0)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--storage", choices=("memory", "file"), default="memory")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", choices=("ours", "floor"))
    args = ap.parse_args()
    if not args.bench or not os.path.exists(args.bench):
        raise SystemExit("give the relay benchmark's path: --bench PATH or TB_GW_RELAY_BENCH")
    args.bench = os.path.abspath(args.bench)
    for python in interpreters(args.python):
        compile_package(python)
        results = {"ours": [], "floor": []}
        for _ in range(args.repeat):
            for who in ("ours", "floor"):
                if args.only in (None, who):
                    result = run(python, who, args)
                    print(json.dumps(result), flush=True)
                    results[who].append(result)
        summary = {"summary": "memory", "python": python_version(python), "storage": args.storage,
                   "cpu_quota": args.cpu_quota, "rate": args.rate}
        for who, runs in results.items():
            for key in ("rss_before_mb", "rss_after_mb", "rss_idle_after_mb", "peak_rss_mb", "msgs_per_s", "lost"):
                if runs:
                    summary["%s_%s" % (who, key)] = [r[key] for r in runs]
        if results["ours"] and results["floor"]:
            summary["idle_after_vs_floor_mb"] = [round(o["rss_idle_after_mb"] - f["rss_idle_after_mb"], 1)
                                                 for o, f in zip(results["ours"], results["floor"])]
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
