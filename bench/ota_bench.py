#!/usr/bin/env python3
"""Updates from ThingsBoard, the download: a software package assigned to the gateway,
fetched by chunks over MQTT and verified (SHA256), against a bare paho loop doing the same
job (ask chunk n, wait for it, append it to a file, hash it, fsync at the end). The platform
is the tests' platform double on a local Mosquitto; the gateway runs with no connector.

Per run: seconds from the assignment to VERIFIED (ours) or to the verified file (floor),
and the CPU seconds the process used meanwhile. Each on this interpreter and Python 3.7.

  python bench/ota_bench.py [--size-mb 2] [--chunk 16384] [--repeat 3] [--cpu-quota 10]
"""
import argparse
import contextlib
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (ROOT, CpuQuota, compile_package, compiled_env, interpreters, process_cpu,  # noqa: E402
                    python_version, stop_process)
from tests.support.broker import Mosquitto  # noqa: E402
from tests.support.platform import PlatformDouble  # noqa: E402

FLOOR = r"""
import hashlib, os, sys, threading, time
import paho.mqtt.client as mqtt
port, size, chunk, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
got = {}
cond = threading.Condition()
def on_message(client, userdata, msg):
    with cond:
        got[int(msg.topic.rsplit("/", 1)[1])] = msg.payload
        cond.notify()
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ota-floor")
client.on_message = on_message
client.connect("127.0.0.1", port)
client.subscribe("v2/sw/response/+/chunk/+", qos=1)
client.loop_start()
time.sleep(0.5)
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()
digest = hashlib.sha256()
received, n = 0, 0
with open(path, "wb") as out:
    while received < size:
        client.publish("v2/sw/request/1/chunk/%d" % n, str(chunk), qos=1)
        with cond:
            while n not in got:
                cond.wait()
            data = got.pop(n)
        if not data:
            break
        out.write(data); digest.update(data); received += len(data); n += 1
    out.flush(); os.fsync(out.fileno())
sys.stdout.write(digest.hexdigest() + "\n"); sys.stdout.flush()
"""


@contextlib.contextmanager
def platform_double(prefix):
    """A work folder and a Mosquitto with the platform double on it, all gone afterwards."""
    work = tempfile.mkdtemp(prefix=prefix)
    broker = Mosquitto(work, "platform", extra="set_tcp_nodelay true\n").start()
    platform = PlatformDouble(broker.port)
    try:
        yield work, broker, platform
    finally:
        platform.close()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def started(command, cpu_quota, **popen):
    """The process of `command`, at `cpu_quota` percent of one core (0: unconfined), stopped
    afterwards."""
    process = subprocess.Popen(command, **popen)
    quota = None
    try:
        if cpu_quota:
            quota = CpuQuota(cpu_quota)
            quota.add(process.pid)
        yield process
    finally:
        stop_process(process)
        if quota is not None:
            quota.close()


def ours(python, args, data):
    with platform_double("tbgw-ota-") as (work, broker, platform):
        config = {"thingsboard": {"host": "127.0.0.1", "port": broker.port,
                                  "security": {"type": "accessToken", "accessToken": "BENCH"},
                                  "statistics": {"enable": False},
                                  "softwareUpdates": {"enabled": True, "chunkSize": args.chunk}},
                  "storage": {"type": "memory"}, "connectors": []}
        path = os.path.join(work, "tb_gateway.json")
        with open(path, "w") as f:
            json.dump(config, f)
        with started([python, "-m", "thingsboard_gateway", "--config", path], args.cpu_quota, cwd=work,
                     env=compiled_env(PYTHONPATH=ROOT), stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL) as process:
            if not platform.wait_for(lambda _: platform.own_requests(), 60):
                raise SystemExit("the gateway did not ask for its assignment")
            time.sleep(0.5)
            cpu, start = process_cpu(process.pid), time.monotonic()
            platform.serve_software("thingsboard-gateway", "9.9.9", data)
            if not platform.wait_for(lambda _: any(s == "VERIFIED" for s, _ in platform.sw_states()), args.timeout):
                raise SystemExit("no VERIFIED within %d s: %s" % (args.timeout, platform.sw_states()))
            return time.monotonic() - start, process_cpu(process.pid) - cpu


def floor(python, args, data):
    with platform_double("tbgw-ota-floor-") as (work, broker, platform):
        platform.package = data
        target = os.path.join(work, "package")
        with started([python, "-c", FLOOR, str(broker.port), str(len(data)), str(args.chunk), target],
                     args.cpu_quota, stdin=subprocess.PIPE, stdout=subprocess.PIPE, universal_newlines=True,
                     env=compiled_env()) as process:
            assert process.stdout.readline().strip() == "ready"
            cpu, start = process_cpu(process.pid), time.monotonic()
            process.stdin.write("go\n")
            process.stdin.flush()
            digest = process.stdout.readline().strip()
            elapsed, used = time.monotonic() - start, process_cpu(process.pid) - cpu
        assert digest == hashlib.sha256(data).hexdigest(), "the floor's file is not the package"
        return elapsed, used


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", action="append", help="interpreter(s) (default: this one and .venv37)")
    ap.add_argument("--size-mb", type=float, default=2.0)
    ap.add_argument("--chunk", type=int, default=16384)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cpu-quota", type=int, default=0, help="percent of one core for both (0: none)")
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()
    data = os.urandom(int(args.size_mb * 1024 * 1024))
    for python in interpreters(args.python):
        version = python_version(python)
        compile_package(python)
        figures = {"ours": [], "floor": []}
        for _ in range(args.repeat):
            for who, run in (("ours", ours), ("floor", floor)):
                seconds, cpu = run(python, args, data)
                figures[who].append((seconds, cpu))
                print(json.dumps({"who": who, "python": version, "size_mb": args.size_mb, "chunk": args.chunk,
                                  "cpu_quota": args.cpu_quota, "seconds": round(seconds, 3), "cpu_s": round(cpu, 3)}))
                sys.stdout.flush()
        summary = {"summary": "ota download", "python": version, "size_mb": args.size_mb, "chunk": args.chunk,
                   "cpu_quota": args.cpu_quota}
        for who in ("ours", "floor"):
            summary[who + " seconds"] = round(statistics.median(s for s, _ in figures[who]), 3)
            summary[who + " cpu_s"] = round(statistics.median(c for _, c in figures[who]), 3)
        summary["ours vs floor (time)"] = round(summary["ours seconds"] / summary["floor seconds"], 2)
        summary["ours vs floor (cpu)"] = round(summary["ours cpu_s"] / max(summary["floor cpu_s"], 0.001), 2)
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
