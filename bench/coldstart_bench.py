#!/usr/bin/env python3
"""Cold start: from exec to the first device message on the platform, with the devices
already publishing and the platform answering getSessionLimits, at `--cpu-quota` percent of
one core (10: a Pi Zero). Ours started as `python -m thingsboard_gateway`, ours started by
the installed command (the interpreter's bin/thingsboard-gateway, when there is one), and
the floor (the team's relay benchmark's bare paho relay, its `--relay` mode, run from its
file), each `--repeat` times, on each interpreter side by side (this one and .venv37's).

Per run: seconds to the first message, CPU seconds the process used by then, RSS then.
Summary: medians, and ours against the floor.

  export TB_GW_RELAY_BENCH=/path/to/mqtt_relay_bench.py   # or --bench PATH
  python bench/coldstart_bench.py [--cpu-quota 10] [--repeat 5] [--python .venv37/bin/python]
  python bench/coldstart_bench.py --all-connectors   # the packaged examples of every connector enabled
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
from common import (ROOT, CpuQuota, compile_package, compiled_env, interpreters, listener, process_cpu,  # noqa: E402
                    python_version, status_mb, stop_process)
from memory_bench import LIMITS, write_configs  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402


class FirstMessage(object):
    """The platform side: answers getSessionLimits, notes when the first telemetry came."""

    def __init__(self, port):
        self.at = None  # type: float
        self.event = threading.Event()
        self.client = listener(port, "coldstart-platform", [("v1/gateway/telemetry", 1),
                                                            ("v1/devices/me/rpc/request/+", 1)], self._on_message)

    def _on_message(self, client, userdata, msg):
        if msg.topic.startswith("v1/devices/me/rpc/request/"):
            client.publish("v1/devices/me/rpc/response/" + msg.topic.rsplit("/", 1)[1], json.dumps(LIMITS), qos=1)
        elif self.at is None:
            self.at = time.monotonic()
            self.event.set()

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


class Devices(object):
    """Devices already publishing, `rate` messages a second, until closed."""

    def __init__(self, port, rate=50):
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="coldstart-devices")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self._stop = threading.Event()
        self._rate = rate
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        n = 0
        while not self._stop.wait(1.0 / self._rate):
            n += 1
            device = "Sensor-%04d" % (n % 10)
            self.client.publish("sensor/%s/data" % device, json.dumps({
                "serialNumber": device, "model": "TH-100", "temperature": 21.5, "humidity": 40, "seq": n,
                "sent": time.time()}), qos=1)

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.client.loop_stop()
        self.client.disconnect()


def all_connectors_config(folder, platform_port):
    """tb_gateway.json with every example connector file of config/ enabled (their devices
    are not there: what is measured is the start-up an operator who turns on everything waits)."""
    entries = []
    for name in sorted(os.listdir(os.path.join(ROOT, "config"))):
        kind = name[:-5]
        if name.endswith(".json") and kind not in ("tb_gateway", "logs", "simulator"):
            shutil.copy(os.path.join(ROOT, "config", name), os.path.join(folder, name))
            entries.append({"name": kind.upper(), "type": kind, "configuration": name})
    shutil.copy(os.path.join(ROOT, "config", "simulator.json"), os.path.join(folder, "simulator.json"))
    entries.append({"name": "Simulator", "type": "simulator", "class": "SimulatorConnector",
                    "configuration": "simulator.json"})
    config = {"thingsboard": {"host": "127.0.0.1", "port": platform_port,
                              "security": {"type": "accessToken", "accessToken": "BENCH"},
                              "statistics": {"enable": False}},
              "storage": {"type": "memory"}, "connectors": entries}
    path = os.path.join(folder, "tb_gateway.json")
    with open(path, "w") as f:
        json.dump(config, f)
    return path


def run(python, who, args):
    work = tempfile.mkdtemp(prefix="tbgw-coldstart-")
    devices_broker, platform = Mosquitto(work, "devices").start(), Mosquitto(work, "platform").start()
    process = quota = first = devices = None
    try:
        if args.all_connectors:
            config = all_connectors_config(work, platform.port)
        else:
            config = write_configs(work, devices_broker.port, platform.port, "memory")
        if who == "ours -m":
            command = [python, "-m", "thingsboard_gateway", "--config", config]
        elif who == "ours command":
            command = [os.path.join(os.path.dirname(python), "thingsboard-gateway"), "--config", config]
        else:
            command = [python, args.bench, "--relay", str(devices_broker.port), str(platform.port)]
        env = compiled_env(PYTHONPATH=ROOT if who == "ours -m" else "",
                           TB_GW_EXTENSIONS_DIR=os.path.join(ROOT, "extensions"))  # the examples name its converters
        first = FirstMessage(platform.port)
        devices = Devices(devices_broker.port)
        time.sleep(0.5)
        quota = CpuQuota(args.cpu_quota) if args.cpu_quota else None
        with open(os.path.join(work, "process.log"), "wb") as log:
            if quota is not None:  # the child joins the cgroup before it runs a line of Python
                command = ["sh", "-c", 'echo $$ > "%s/cgroup.procs" && exec "$@"' % quota.path, "sh"] + command
            start = time.monotonic()
            process = subprocess.Popen(command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
        if not first.event.wait(args.timeout):
            with open(os.path.join(work, "process.log"), errors="replace") as log:
                raise SystemExit("%s: no message in %.0f s:\n%s" % (who, args.timeout, log.read()[-2000:]))
        cpu, rss = process_cpu(process.pid), status_mb(process.pid, "VmRSS")["VmRSS"]
        return {"who": who, "python": python_version(python), "cpu_quota": args.cpu_quota,
                "all_connectors": args.all_connectors, "first_message_s": round(first.at - start, 3),
                "cpu_s": round(cpu, 3), "rss_mb": round(rss, 1)}
    finally:
        for thing in (devices, first):
            if thing is not None:
                thing.close()
        if process is not None:
            stop_process(process)
        if quota is not None:
            quota.close()
        devices_broker.stop()
        platform.stop()
        shutil.rmtree(work, ignore_errors=True)


def median(values):
    values = sorted(values)
    return values[len(values) // 2] if values else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=os.environ.get("TB_GW_RELAY_BENCH"),
                    help="path of mqtt_relay_bench.py (its --relay mode is the floor)")
    ap.add_argument("--python", action="append", help="interpreter(s) to run on (default: this one and .venv37)")
    ap.add_argument("--cpu-quota", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--all-connectors", action="store_true")
    args = ap.parse_args()
    if not args.all_connectors and (not args.bench or not os.path.exists(args.bench)):
        raise SystemExit("give the relay benchmark's path: --bench PATH or TB_GW_RELAY_BENCH (its relay is the floor)")
    args.bench = os.path.abspath(args.bench) if args.bench else None
    for python in interpreters(args.python):
        compile_package(python)
        whos = ["ours -m"]
        if os.path.exists(os.path.join(os.path.dirname(python), "thingsboard-gateway")):
            whos.append("ours command")
        if not args.all_connectors:
            whos.append("floor")
        results = {}  # type: dict
        for _ in range(args.repeat):
            for who in whos:
                result = run(python, who, args)
                print(json.dumps(result), flush=True)
                results.setdefault(who, []).append(result)
        summary = {"summary": "coldstart", "python": python_version(python), "cpu_quota": args.cpu_quota,
                   "all_connectors": args.all_connectors}
        for who, runs in results.items():
            for key in ("first_message_s", "cpu_s", "rss_mb"):
                summary["%s %s" % (who, key)] = median([r[key] for r in runs])
        if "floor" in results:
            for who in ("ours -m", "ours command"):
                if who in results:
                    summary["%s vs floor (time)" % who] = round(summary["%s first_message_s" % who] /
                                                                summary["floor first_message_s"], 2)
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
