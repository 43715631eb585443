#!/usr/bin/env python3
"""Remote management's cost: a gateway process (one socket connector, memory storage,
statistics every 60 s) idle for S seconds with remoteConfiguration off, then on (the
platform double answers and re-sends the shared attributes as ThingsBoard does), on each
interpreter (the machine's Python and .venv37's when present). Prints idle CPU ms per
second, RSS, and the wake-ups of all the gateway's threads per second (voluntary context
switches). Then a flood: RemoteLoggingLevel WARNING and 1,000 warnings at once; prints the
log lines and telemetry messages the platform got in the following 10 s.

  python bench/management_bench.py [--seconds 20]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, free_port, interpreters, process_cpu, python_version, rss_mb, stop_process, wait_port  # noqa: E402

sys.path.insert(0, ROOT)
from tests.support.broker import Mosquitto  # noqa: E402
from tests.support.platform import PlatformDouble  # noqa: E402



def process_figures(pid):
    """(CPU seconds, RSS MB, voluntary context switches of every thread)."""
    cpu, rss, switches = process_cpu(pid), rss_mb(pid), 0
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, task)) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        switches += int(line.split()[1])
        except OSError:
            pass
    return cpu, rss, switches


def run(python, remote, args, folder, broker):
    platform = PlatformDouble(broker.port)
    port = free_port()
    with open(os.path.join(folder, "socket.json"), "w") as f:
        json.dump({"socket": {"type": "TCP", "address": "127.0.0.1", "port": port},
                   "devices": [{"address": "*:*", "deviceName": "Line",
                                "telemetry": [{"key": "t", "byteFrom": 0, "byteTo": -1}]}]}, f)
    path = os.path.join(folder, "tb_gateway.json")
    with open(path, "w") as f:
        json.dump({"thingsboard": {"host": "127.0.0.1", "port": broker.port, "remoteConfiguration": remote,
                                   "security": {"type": "accessToken", "accessToken": "BENCH"},
                                   "statistics": {"enable": True, "statsSendPeriodInSeconds": 60}},
                   "storage": {"type": "memory"},
                   "connectors": [{"name": "Line", "type": "socket", "configuration": "socket.json"}]}, f)
    gateway = subprocess.Popen([python, "-m", "thingsboard_gateway", "--config", path],
                               env=dict(os.environ, PYTHONPATH=ROOT), cwd=folder,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, 30)
        if remote:
            platform.wait_for(lambda m: platform.latest_client("Line"), 30)
            platform.own_shared.update({"Line": platform.latest_client("Line"), "active_connectors": ["Line"]})
        time.sleep(3.0)
        cpu0, _, switches0 = process_figures(gateway.pid)
        start = time.monotonic()
        time.sleep(args.seconds)
        cpu1, rss, switches1 = process_figures(gateway.pid)
        elapsed = time.monotonic() - start
        result = {"python": python_version(python), "remoteConfiguration": remote,
                  "idle_cpu_ms_per_s": round((cpu1 - cpu0) * 1000.0 / elapsed, 3), "rss_mb": round(rss, 1),
                  "wakeups_per_s": round((switches1 - switches0) / elapsed, 2)}
        if remote:
            platform.push_shared({"RemoteLoggingLevel": "WARNING"})
            platform.wait_for(lambda m: platform.latest_client("RemoteLoggingLevel") == "WARNING", 10)
            before = len(platform.on("v1/devices/me/telemetry"))
            for n in range(1000):
                platform.client.publish("v1/gateway/attributes", json.dumps({"device": "ghost-%d" % n,
                                                                              "data": {"x": 1}}))
            time.sleep(10.0)
            messages = [b for b in platform.on("v1/devices/me/telemetry")[before:] if isinstance(b, list)]
            result.update({"flood_warnings": 1000, "flood_log_lines_in_10s": sum(len(m) for m in messages),
                           "flood_log_messages_in_10s": len(messages)})
        return result
    finally:
        stop_process(gateway)
        platform.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--python", action="append")
    args = ap.parse_args()
    pythons = interpreters(args.python)
    folder = tempfile.mkdtemp(prefix="management-bench-")
    broker = Mosquitto(folder, "platform").start()
    try:
        for python in pythons:
            for remote in (False, True):
                print(json.dumps(run(python, remote, args, folder, broker)), flush=True)
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
