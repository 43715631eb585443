#!/usr/bin/env python3
"""BLE benchmark with the bluepy double (no adapter here): CPU per notification and per
polled read of the BLE connector, against a plain bluepy loop doing the same job (connect,
subscribe, wait for notifications, read on a period, build the records) on the same
double, and memory with N devices. Each run is its own process; on each interpreter (the
machine's Python and .venv37's when present).

  python bench/ble_bench.py [--devices 20] [--rate 25] [--poll-ms 20] [--seconds 10]

--rate: notifications per second per device; --poll-ms: the read period of every
device (20 devices every 20 ms: 1,000 reads/s, so that the cost per read shows over the
fixed cost of an idle process, which the "idle" run measures: 20 devices connected,
nothing due, CPU ms per second). Prints one JSON line per run and a summary
with the ratios to the floor (target <= 1.5). The double's own work is in both runs.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CountingGateway, ROOT, cpu, interpreters, python_version, rss_mb  # noqa: E402

FAKE = os.path.join(ROOT, "tests", "support", "fake_bluepy")
NOTIFY, READ = "226caa55-6476-4566-7562-66734470666d", "00002a19-0000-1000-8000-00805f9b34fb"


def world(btle, devices, rate):
    for i in range(devices):
        btle.WORLD.add("AA:BB:CC:00:00:%02X" % i, {NOTIFY: b"\x01\x02\x17", READ: b"\x55"},
                       {NOTIFY: {"period": 1.0 / rate if rate else 3600, "values": ["010217", "010218"]}})


def run_connector(args, mode):
    from bluepy import btle
    from thingsboard_gateway.connectors.ble.connector import BleConnector
    world(btle, args.devices, args.rate if mode == "notify" else 0)
    base = rss_mb()
    devices = [{"name": "Sensor %d" % i, "MACAddress": "AA:BB:CC:00:00:%02X" % i,
                "pollPeriod": args.poll_ms if mode == "read" else 600000,
                "telemetry": [{"key": "temperature", "method": "notify", "characteristicUUID": NOTIFY,
                               "valueExpression": "[2]"}] if mode == "notify" else [
                    {"key": "battery", "method": "read", "characteristicUUID": READ, "valueExpression": "[0]"}]}
               for i in range(args.devices)]
    gateway = CountingGateway()
    connector = BleConnector(gateway, {"name": "bench", "devices": devices}, "ble")
    connector.open()
    time.sleep(1.0)  # all connected
    kind = "notifications" if mode == "notify" else "reads"
    start_cpu, count0 = cpu(), connector.statistics()[kind]
    time.sleep(args.seconds)
    used = cpu() - start_cpu
    count = connector.statistics()[kind] - count0
    rss = rss_mb()
    connector.close()
    return {"events": count, "cpu_s": round(used, 3), "rss_mb": round(rss, 1), "rss_over_start_mb": round(rss - base, 1)}


def run_floor(args, mode):
    """A plain bluepy loop: what a one-off script would do, handing the same records to
    the same gateway stand-in."""
    from bluepy import btle
    world(btle, args.devices, args.rate if mode == "notify" else 0)
    base = rss_mb()
    gateway = CountingGateway()  # the records go where the connector's go

    class Delegate(btle.DefaultDelegate):
        def __init__(self, name):
            btle.DefaultDelegate.__init__(self)
            self.name = name

        def handleNotification(self, cHandle, data):
            gateway.send_to_storage("floor", "floor", {"deviceName": self.name, "telemetry": [
                {"ts": int(time.time() * 1000), "values": {"temperature": data[2]}}]})

    peripherals = []
    for i in range(args.devices):
        p = btle.Peripheral("AA:BB:CC:00:00:%02X" % i)
        p.withDelegate(Delegate("Sensor %d" % i))
        chars = {str(c.uuid): c for c in p.getCharacteristics()}
        if mode == "notify":
            p.writeCharacteristic(chars[NOTIFY].getHandle() + 1, b"\x01\x00", withResponse=True)
        peripherals.append((p, chars[READ], "Sensor %d" % i))
    time.sleep(1.0)
    start_cpu, start, count0 = cpu(), time.monotonic(), gateway.records
    next_poll = start
    while time.monotonic() - start < args.seconds:
        if mode == "notify":
            for p, _, _ in peripherals:
                p.waitForNotifications(0.1 / len(peripherals))
        elif mode == "idle":
            time.sleep(0.5)
        else:
            for _, characteristic, name in peripherals:
                gateway.send_to_storage("floor", "floor", {"deviceName": name, "telemetry": [
                    {"ts": int(time.time() * 1000), "values": {"battery": characteristic.read()[0]}}]})
            next_poll += args.poll_ms / 1000.0
            time.sleep(max(0.0, next_poll - time.monotonic()))
    used = cpu() - start_cpu
    rss = rss_mb()
    for p, _, _ in peripherals:
        p.disconnect()
    return {"events": gateway.records - count0, "cpu_s": round(used, 3), "rss_mb": round(rss, 1),
            "rss_over_start_mb": round(rss - base, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--rate", type=float, default=25)
    ap.add_argument("--poll-ms", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--python", action="append")
    ap.add_argument("--subject", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.subject:
        which, mode = args.subject.split(":")
        print(json.dumps((run_connector if which == "connector" else run_floor)(args, mode)))
        return
    pythons = interpreters(args.python)
    env = dict(os.environ, PYTHONPATH=FAKE + os.pathsep + ROOT)
    for python in pythons:
        version = python_version(python)
        ratios = {}
        for mode in ("notify", "read", "idle"):
            per = {}
            for which in ("connector", "floor"):
                out = subprocess.run([python, __file__, "--subject", "%s:%s" % (which, mode), "--devices",
                                      str(args.devices), "--rate", str(args.rate), "--poll-ms", str(args.poll_ms),
                                      "--seconds", str(args.seconds)], stdout=subprocess.PIPE,
                                     universal_newlines=True, env=env, check=True).stdout
                result = json.loads(out.strip().splitlines()[-1])
                result.update({"run": which, "mode": mode, "python": version, "devices": args.devices,
                               "cpu_ms_per_event": round(1000.0 * result["cpu_s"] / max(1, result["events"]), 4),
                               "cpu_ms_per_s": round(1000.0 * result["cpu_s"] / args.seconds, 2)})
                per[which] = result
                print(json.dumps(result), flush=True)
            if mode == "idle":
                idle = {w: per[w]["cpu_ms_per_s"] for w in per}
                rss = {w: per[w]["rss_mb"] for w in per}
            ratios[mode] = round(per["connector"]["cpu_ms_per_event"] / max(1e-9, per["floor"]["cpu_ms_per_event"]), 2)
        print(json.dumps({"summary": "ble", "python": version, "devices": args.devices,
                          "cpu_per_notification_vs_floor": ratios["notify"], "cpu_per_read_vs_floor": ratios["read"],
                          "idle_cpu_ms_per_s": [idle["connector"], idle["floor"]],
                          "rss_mb_20_devices": [rss["connector"], rss["floor"]], "target_cpu_ratio": 1.5}), flush=True)


if __name__ == "__main__":
    main()
