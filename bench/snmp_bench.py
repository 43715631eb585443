#!/usr/bin/env python3
"""SNMP polling benchmark: the connector polling N devices x K OIDs (one GET each) every P
ms against a real net-snmp agent (snmpd on a free UDP port), against the floor: a plain
puresnmp loop at the same cadence, in the same run and on the same interpreter: the
library's own `get` per OID, its `multiget` per device (one GET for the device's OIDs, as
the connector asks for a device's plain `get` keys), both on one thread (a dead agent
would stall every device behind it), and `multiget` on a thread per device: the same job
with the connector's isolation, the floor the bar (~1.3x) is measured against. The connector runs in-process with a counting
stand-in for the gateway (no platform), so the CPU measured is the connector's.

Runs itself on each interpreter (this one and .venv37's Python when present; or --python).
Prints JSON lines per run and a summary per interpreter: CPU seconds per 1,000 GETs and the
ratio (the bar: at most ~1.3x the floor), polls on time.

  python bench/snmp_bench.py [--devices 50] [--oids 4] [--period-ms 1000] [--seconds 20]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, CountingGateway, cpu, interpreters, python_version  # noqa: E402

OIDS = ["1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.6.0",
        "1.3.6.1.2.1.2.1.0", "1.3.6.1.2.1.1.7.0"]


def run_connector(port, args):
    from thingsboard_gateway.connectors.snmp.connector import SnmpConnector
    oids = [OIDS[i % len(OIDS)] for i in range(args.oids)]
    devices = [{"deviceName": "Device %d" % i, "ip": "127.0.0.1", "port": port, "pollPeriod": args.period_ms,
                "community": "public", "version": "v2c", "timeout": 2, "retries": 1,
                "telemetry": [{"key": "k%d" % k, "method": "get", "oid": oid} for k, oid in enumerate(oids)]}
               for i in range(args.devices)]
    gateway = CountingGateway()
    config = SnmpConnector.load_config({"devices": devices}, "bench")
    connector = SnmpConnector(gateway, dict(config, name="bench"), "snmp")
    start_cpu = cpu()
    connector.open()
    time.sleep(args.seconds)
    polls = sum(s.polls for s in connector.sessions.values())
    used = cpu() - start_cpu
    connector.close()
    return polls, used, gateway.records


def run_floor(port, args, together=False):
    """together: the device's OIDs in one puresnmp.multiget (one GET), as the connector asks."""
    import puresnmp
    oids = [OIDS[i % len(OIDS)] for i in range(args.oids)]
    period = args.period_ms / 1000.0
    polls = 0
    start_cpu, start = cpu(), time.monotonic()
    next_tick = start
    while time.monotonic() - start < args.seconds:
        for _ in range(args.devices):
            if together:
                dict(zip(("k%d" % k for k in range(len(oids))),
                         puresnmp.multiget("127.0.0.1", "public", oids, port=port, timeout=2)))
            else:
                {"k%d" % k: puresnmp.get("127.0.0.1", "public", oid, port=port, timeout=2)
                 for k, oid in enumerate(oids)}
            polls += 1
        next_tick += period
        delay = next_tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return polls, cpu() - start_cpu


def run_threaded_floor(port, args):
    """The same job as the connector with its isolation: a thread per device (a dead agent
    stalls only its own), each a plain puresnmp.multiget loop at the period."""
    import threading
    import puresnmp
    oids = [OIDS[i % len(OIDS)] for i in range(args.oids)]
    period = args.period_ms / 1000.0
    stop = threading.Event()
    counts = [0] * args.devices

    def device(index):
        due = time.monotonic()
        while not stop.is_set():
            dict(zip(("k%d" % k for k in range(len(oids))),
                     puresnmp.multiget("127.0.0.1", "public", oids, port=port, timeout=2)))
            counts[index] += 1
            due += period
            stop.wait(max(0.0, due - time.monotonic()))
    threads = [threading.Thread(target=device, args=(i,)) for i in range(args.devices)]
    start_cpu = cpu()
    for thread in threads:
        thread.start()
    time.sleep(args.seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return sum(counts), cpu() - start_cpu


def child(args):
    """One interpreter's runs (this process)."""
    from tests.support.snmp_agent import SnmpAgent
    with tempfile.TemporaryDirectory() as folder:
        agent = SnmpAgent(folder).start()
        try:
            configured = args.devices * args.seconds * 1000.0 / args.period_ms
            gets = args.oids
            polls, used, records = run_connector(agent.port, args)
            ours = {"run": "connector", "python": "%d.%d" % sys.version_info[:2], "configured_polls": int(configured),
                    "polls": polls, "on_time_pct": round(100.0 * polls / configured, 1), "records": records,
                    "cpu_s": round(used, 2), "cpu_s_per_1k_gets": round(1000 * used / max(1, polls * gets), 4)}
            print(json.dumps(ours), flush=True)
            floors = []
            for together, name in ((False, "floor (puresnmp.get per OID, one thread)"),
                                   (True, "floor (puresnmp.multiget per device, one thread)"),
                                   (None, "floor (puresnmp.multiget, a thread per device)")):
                if together is None:
                    floor_polls, floor_used = run_threaded_floor(agent.port, args)
                else:
                    floor_polls, floor_used = run_floor(agent.port, args, together)
                floor = {"run": name, "polls": floor_polls,
                         "on_time_pct": round(100.0 * floor_polls / configured, 1), "cpu_s": round(floor_used, 2),
                         "cpu_s_per_1k_gets": round(1000 * floor_used / max(1, floor_polls * gets), 4)}
                print(json.dumps(floor), flush=True)
                floors.append(floor["cpu_s_per_1k_gets"])
            print(json.dumps({"summary": "snmp", "python": ours["python"], "on_time_pct": ours["on_time_pct"],
                              "cpu_s_per_1k_gets": ours["cpu_s_per_1k_gets"],
                              "floor_get_cpu_s_per_1k_gets": floors[0], "floor_multiget_cpu_s_per_1k_gets": floors[1],
                              "floor_threaded_cpu_s_per_1k_gets": floors[2],
                              "vs_get_floor": round(ours["cpu_s_per_1k_gets"] / max(1e-9, floors[0]), 2),
                              "vs_multiget_floor": round(ours["cpu_s_per_1k_gets"] / max(1e-9, floors[1]), 2),
                              # the same job with the same isolation (a dead agent stalls only itself):
                              "vs_threaded_floor": round(ours["cpu_s_per_1k_gets"] / max(1e-9, floors[2]), 2),
                              "target_cpu_ratio": 1.3}), flush=True)
        finally:
            agent.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--oids", type=int, default=4)
    ap.add_argument("--period-ms", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--python", action="append", help="interpreter(s) to run on (default: this and .venv37's)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    for python in interpreters(args.python):
        print("# python %s: %s" % (python_version(python), python), flush=True)
        subprocess.run([python, os.path.abspath(__file__), "--child", "--devices", str(args.devices), "--oids",
                        str(args.oids), "--period-ms", str(args.period_ms), "--seconds", str(args.seconds)],
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT))


if __name__ == "__main__":
    main()
