#!/usr/bin/env python3
"""OPC-UA at upstream's scale: one device with N Double nodes (10,000; upstream's
opcua10K.json has 9,070) on a python-opcua server that changes C of them per second,
each to the time of the change. Three clients, each in turn, each confined to a share of
a core (--cpu-quota, default 25 %: a Raspberry Pi 3), on each interpreter (the machine's
Python and .venv37's when present):

  bare         the floor: a python-opcua subscription client that publishes what it gets
               with paho, every 100 ms (no storage, no checks)
  subscription our gateway process, subscriptions
  polling      our gateway process, polling every second

Our gateway reads a file in upstream's pre-3.5 shape (server.mapping, `path`,
`deviceNamePattern` with a template, `disableSubscriptions`, `scanPeriodInMillis` as the
poll period), as opcua10K.json is, with memory storage. A paho subscriber on the same
Mosquitto stands in for ThingsBoard and records, for every value, when it arrived.

Printed per run: seconds until all N keys were delivered (from the process's start);
changes delivered (distinct values seen / changes the server made in the window) and the
share within 10 s of the change; delay p50/p99/max; values per second delivered; CPU s
per 1,000 changes; peak RSS (VmHWM); seconds to exit on SIGTERM (and whether SIGKILL
was needed).

  python bench/opcua_scale_bench.py [--nodes 10000] [--changes 1000] [--seconds 30] [--cpu-quota 25]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (ROOT, CpuQuota, compiled_env, free_port, interpreters, listener, process_cpu,  # noqa: E402
                    python_version, status_mb, wait_port, write_gateway_config)

sys.path.insert(0, ROOT)
from tests.support.broker import Mosquitto  # noqa: E402

# The server: Device1 with N variables Tag0..TagN-1 and a serialNumber; `changes` per second,
# round robin, each set to time.time(); prints "<time> <changes made>" twice a second.
SERVER = """
import logging, sys, time
logging.disable(logging.CRITICAL)
from opcua import Server, ua
port, count, rate = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
server = Server()
server.set_endpoint("opc.tcp://127.0.0.1:%d/scale/" % port)
idx = server.register_namespace("http://scale")
device = server.get_objects_node().add_object(idx, "Device1")
device.add_variable(idx, "serialNumber", "SN-1")
nodes = [device.add_variable(idx, "Tag%d" % i, 0.0) for i in range(count)]
server.start()
print("ready", flush=True)
made, i, step = 0, 0, 0.1
next_at = time.time()
report_at = next_at
while True:
    now = time.time()
    for _ in range(int(rate * step)):
        nodes[i].set_value(ua.DataValue(ua.Variant(now, ua.VariantType.Double)))
        i, made = (i + 1) % count, made + 1
    if now >= report_at:
        print("%.3f %d" % (now, made), flush=True)
        report_at += 0.5
    next_at += step
    time.sleep(max(0.0, next_at - time.time()))
"""

# The floor: subscribe to every variable of Device1, publish what arrived every 100 ms.
BARE = """
import json, logging, sys, threading, time
logging.disable(logging.CRITICAL)
from opcua import Client, ua
import paho.mqtt.client as mqtt
url, broker_port = sys.argv[1], int(sys.argv[2])
try:
    mq = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bare-opcua")
except AttributeError:
    mq = mqtt.Client(client_id="bare-opcua")
mq.connect("127.0.0.1", broker_port)
mq.loop_start()
client = Client(url)
client.connect()
device = [n for n in client.get_objects_node().get_children() if n.get_browse_name().Name == "Device1"][0]
refs = [r for r in device.get_children_descriptions() if r.NodeClass == ua.NodeClass.Variable]
keys = {r.NodeId: r.BrowseName.Name for r in refs}
lock, pending = threading.Lock(), []
class Handler(object):
    def datachange_notification(self, node, value, data):
        with lock:
            pending.append((keys[node.nodeid], value))
subscription = client.create_subscription(100, Handler())
nodes = [client.get_node(r.NodeId) for r in refs]
for start in range(0, len(nodes), 500):
    subscription.subscribe_data_change(nodes[start:start + 500])
stop = threading.Event()
import signal
signal.signal(signal.SIGTERM, lambda *a: stop.set())
while not stop.wait(0.1):
    with lock:
        batch, pending[:] = list(pending), []
    if batch:
        mq.publish("v1/gateway/telemetry", json.dumps({"Device SN-1": [{"ts": int(time.time() * 1000),
                                                                          "values": dict(batch)}]}), qos=1)
client.disconnect()
mq.loop_stop()
"""


class Platform(object):
    """Records, per key, the change stamps seen and the delay of their first sight."""

    def __init__(self, port):
        self.lock = threading.Lock()
        self.seen = {}  # type: dict  key -> last stamp
        self.delays = []  # (stamp, delay) of every first sight of a change
        self.values = 0
        self.client = listener(port, "scale-platform-%d" % os.getpid(), "v1/gateway/telemetry", self._on_message)

    def _on_message(self, client, userdata, msg):
        now = time.time()
        body = json.loads(msg.payload.decode())
        with self.lock:
            for entries in body.values():
                for entry in entries if isinstance(entries, list) else [entries]:
                    for key, value in (entry.get("values", entry)).items():
                        if not isinstance(value, float):
                            continue
                        self.values += 1
                        if value > self.seen.get(key, -1.0):
                            self.seen[key] = value
                            if value > 0:
                                self.delays.append((value, now - value))

    def reset(self):
        with self.lock:
            self.seen.clear()
            self.delays = []
            self.values = 0

    def snapshot(self):
        with self.lock:
            return len(self.seen), list(self.delays), self.values

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


class ServerLog(object):
    """The server's "<time> <changes made>" lines: changes made between two times."""

    def __init__(self, process):
        self.points = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process):
        for line in process.stdout:
            if line.startswith("ready"):
                self.ready.set()
                continue
            at, made = line.split()
            self.points.append((float(at), int(made)))

    def _at(self, when):
        """Changes made by `when`, interpolated between the two nearest reports."""
        points = self.points
        before = [p for p in points if p[0] <= when]
        after = [p for p in points if p[0] > when]
        if not before or not after:
            return before[-1][1] if before else 0
        (t0, m0), (t1, m1) = before[-1], after[0]
        return m0 + (m1 - m0) * (when - t0) / (t1 - t0)

    def made(self, since, until):
        return int(round(self._at(until) - self._at(since)))


def old_shape_file(url, nodes, subscriptions):
    """The connector file in upstream's pre-3.5 shape (as its opcua10K.json)."""
    return {"server": {"name": "OPC-UA Default Server", "url": url.replace("opc.tcp://", ""), "timeoutInMillis": 5000,
                       "scanPeriodInMillis": 1000, "disableSubscriptions": not subscriptions,
                       "subCheckPeriodInMillis": 100, "showMap": False, "security": "None",
                       "identity": {"type": "anonymous"},
                       "mapping": [{"deviceNodePattern": "Root\\.Objects\\.Device1",
                                    "deviceNamePattern": "Device ${Root\\.Objects\\.Device1\\.serialNumber}",
                                    "attributes": [],
                                    "timeseries": [{"key": "Tag%d" % i, "path": "${Tag%d}" % i}
                                                   for i in range(nodes)]}]}}


def peak_rss_mb(pid):
    return status_mb(pid, "VmHWM").get("VmHWM", 0.0)


def stop_timed(process, timeout=15.0):
    import signal
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
        return round(time.monotonic() - began, 2), False
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return round(time.monotonic() - began, 2), True


def environment():
    """Byte code is written and used, as on an installed board (the .deb compiles it): a
    python-opcua import that compiles its 8 MB standard address space peaks at 250 MB."""
    return compiled_env(PYTHONPATH=ROOT)


def run(python, mode, args, folder, url, broker_port, platform, server_log):
    platform.reset()
    env = environment()
    if mode == "bare":
        command = [python, "-c", BARE, url, str(broker_port)]
    else:
        path = write_gateway_config(folder, broker_port, "opcua", "opcua.json",
                                    old_shape_file(url, args.nodes, mode == "subscription"))
        command = [python, "-m", "thingsboard_gateway", "--config", path]
    quota = CpuQuota(args.cpu_quota) if args.cpu_quota else None
    began = time.monotonic()
    process = subprocess.Popen(command, env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               universal_newlines=True)
    errors = []
    threading.Thread(target=lambda: errors.extend(process.stderr), daemon=True).start()
    try:
        if quota is not None:
            quota.add(process.pid)
        all_keys = None
        deadline = began + args.startup_limit
        while time.monotonic() < deadline and process.poll() is None:
            if platform.snapshot()[0] >= args.nodes:
                all_keys = round(time.monotonic() - began, 1)
                break
            time.sleep(0.2)
        w0, cpu0 = time.time(), process_cpu(process.pid)
        time.sleep(args.seconds)
        w1, cpu1 = time.time(), process_cpu(process.pid)
        time.sleep(args.settle)  # changes of the window still on their way
        keys, delays, values = platform.snapshot()
        peak = peak_rss_mb(process.pid)
    finally:
        exit_s, killed = stop_timed(process)
        if quota is not None:
            quota.close()
    made = server_log.made(w0, w1)
    window = sorted(d for stamp, d in delays if w0 <= stamp <= w1)
    within = sum(1 for d in window if d <= 10.0)

    def pct(p):
        return round(window[min(len(window) - 1, int(p * len(window)))], 2) if window else None
    tracebacks = sum(1 for line in errors if "Traceback" in line)
    return {"python": python_version(python), "mode": mode, "nodes": args.nodes,
            "all_keys_s": all_keys if all_keys is not None else "not within %d s" % args.startup_limit,
            "changes_made": made, "changes_delivered_pct": round(100.0 * len(window) / made, 1) if made else None,
            "within_10s_pct": round(100.0 * within / made, 1) if made else None,
            "delay_p50_s": pct(0.5), "delay_p99_s": pct(0.99), "delay_max_s": round(window[-1], 2) if window else None,
            "values_per_s": round(values / (w1 - w0 + args.settle), 1),
            "cpu_s_per_1000_changes": round((cpu1 - cpu0) / max(made, 1) * 1000.0, 4),
            "cpu_share_pct": round(100.0 * (cpu1 - cpu0) / (w1 - w0), 1),
            "peak_rss_mb": round(peak, 1), "sigterm_exit_s": exit_s, "needed_sigkill": killed,
            "tracebacks": tracebacks}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=10000)
    ap.add_argument("--changes", type=int, default=1000, help="value changes per second on the server")
    ap.add_argument("--seconds", type=float, default=30.0, help="the measured window")
    ap.add_argument("--settle", type=float, default=10.0, help="seconds allowed for the window's last changes")
    ap.add_argument("--startup-limit", type=float, default=90.0)
    ap.add_argument("--cpu-quota", type=int, default=25, help="percent of one core for the client; 0: none")
    ap.add_argument("--mode", action="append", choices=["bare", "subscription", "polling"])
    ap.add_argument("--python", action="append", help="interpreter under test (repeatable)")
    args = ap.parse_args()
    modes = args.mode or ["bare", "subscription", "polling"]
    folder = tempfile.mkdtemp(prefix="opcua-scale-")
    broker = Mosquitto(folder, "platform").start()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(args.nodes), str(args.changes)],
                              stdout=subprocess.PIPE, universal_newlines=True)
    platform = None
    try:
        server_log = ServerLog(server)
        if not server_log.ready.wait(120) or not wait_port(port):
            raise SystemExit("the OPC-UA server did not start")
        platform = Platform(broker.port)
        url = "opc.tcp://127.0.0.1:%d/scale/" % port
        for python in interpreters(args.python):
            results = {}
            subprocess.run([python, "-c", "import opcua, paho.mqtt.client, thingsboard_gateway.cli"], env=environment(),
                           cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # compiled once
            for mode in modes:
                results[mode] = run(python, mode, args, folder, url, broker.port, platform, server_log)
                print(json.dumps(results[mode]), flush=True)
            if "bare" in results:
                floor = results["bare"]
                summary = {"summary": "opcua_scale", "python": floor["python"]}
                for mode in ("subscription", "polling"):
                    if mode in results:
                        summary[mode + "_cpu_per_change_vs_bare"] = round(
                            results[mode]["cpu_s_per_1000_changes"] / max(floor["cpu_s_per_1000_changes"], 1e-9), 2)
                        summary[mode + "_rss_over_bare_mb"] = round(results[mode]["peak_rss_mb"] - floor["peak_rss_mb"], 1)
                print(json.dumps(summary), flush=True)
    finally:
        if platform is not None:
            platform.close()
        server.terminate()
        server.wait(10)
        broker.stop()


if __name__ == "__main__":
    main()
