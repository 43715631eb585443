#!/usr/bin/env python3
"""The drain after an outage: how fast a backlog of many small records reaches the platform
once the link is back, and how late live data is meanwhile.

The mix of the field (issue 37): an MQTT device publishing {"seq": n} at --mqtt-rate per
second through the MQTT connector, and a Modbus slave (pymodbus's own server) polled every
--modbus-ms for one register, both into file storage. The platform is a Mosquitto broker
behind a proxy (tests/support/proxy.py) that cuts the link for --outage seconds; then the
backlog drains while both devices go on. Per run, from the platform's side: the backlog
(values stamped before the link came back), the time from the first message of the new
session until the last of the backlog arrived, the drain rate (values/s), the p50 and p90
latency of live values (stamped after the link came back) that arrived during the drain,
and loss (MQTT sequence numbers missing). The floor, in the same invocation, is the bare
relay rate of the same gateway: --floor-messages messages published as fast as possible
with no outage, values/s delivered (the drain cannot beat the relay). One JSON line per run.

  python bench/drain_bench.py [--outage 60] [--storage file] [--python .venv37/bin/python] [--cpu-quota 25]
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
from common import CpuQuota, interpreters, listener, process_cpu, python_version, stop_process  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402
from tests.support.devices import PacedPublisher, seq_connector_file  # noqa: E402
from tests.support.modbus_server import ModbusServer  # noqa: E402
from tests.support.proxy import MqttProxy  # noqa: E402


class Arrivals(object):
    """What the platform received on v1/gateway/telemetry: (arrived, device, ts ms, values)."""

    def __init__(self):
        self.items = []
        self.lock = threading.Lock()

    def on_message(self, client, userdata, message):
        now = time.time()
        body = json.loads(message.payload.decode())
        with self.lock:
            for device, entries in body.items():
                for entry in entries:
                    self.items.append((now, device, entry.get("ts", 0), entry.get("values", {})))

    def snapshot(self):
        with self.lock:
            return list(self.items)


def gateway_config(folder, proxy_port, devices_port, modbus_port, args):
    mqtt = seq_connector_file(devices_port, "drain-bench")
    modbus = {"master": {"slaves": [{"type": "tcp", "host": "127.0.0.1", "port": modbus_port, "unitId": 1,
                                     "deviceName": "Meter", "deviceType": "meter", "pollPeriod": args.modbus_ms,
                                     "timeseries": [{"tag": "reg", "type": "16int", "functionCode": 3,
                                                     "address": 0}]}]}}
    config = {"thingsboard": {"host": "127.0.0.1", "port": proxy_port,
                              "security": {"type": "accessToken", "accessToken": "BENCH"},
                              "statistics": {"enable": False}, "sessionLimitsTimeoutMs": 0,
                              "reconnect": {"minDelay": 500, "maxDelay": args.max_backoff_ms}},
              "storage": {"type": args.storage, "data_folder_path": os.path.join(folder, "data"),
                          "max_records_count": 1000000, "max_file_count": 1000,
                          "max_read_records_count": args.read_count, "read_records_count": args.read_count},
              "connectors": [{"name": "MQTT", "type": "mqtt", "configuration": "mqtt.json"},
                             {"name": "Modbus", "type": "modbus", "configuration": "modbus.json"}]}
    for name, content in (("mqtt.json", mqtt), ("modbus.json", modbus), ("tb_gateway.json", config)):
        with open(os.path.join(folder, name), "w") as f:
            json.dump(content, f)
    return os.path.join(folder, "tb_gateway.json")


def percentile(values, share):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * share))]


def one_run(python, args, outage):
    """outage > 0: the drain case; 0: the floor (a burst relayed with no outage)."""
    folder = tempfile.mkdtemp(prefix="drain-bench-")
    platform_broker = Mosquitto(folder, "platform").start()
    devices_broker = Mosquitto(folder, "devices").start()
    modbus = ModbusServer("tcp")
    proxy = MqttProxy(platform_broker.port)
    arrivals = Arrivals()
    platform = listener(platform_broker.port, "drain-platform", "v1/gateway/telemetry", arrivals.on_message)
    device = listener(devices_broker.port, "drain-device", "unused/topic", lambda *a: None)
    path = gateway_config(folder, proxy.port, devices_broker.port, modbus.port, args)
    env = dict(os.environ, PYTHONPATH=args.source or os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    log = open(os.path.join(folder, "gateway.log"), "wb")
    gateway = subprocess.Popen([python, "-m", "thingsboard_gateway", "--config", path], stdout=log,
                               stderr=subprocess.STDOUT, env=env, cwd=folder)
    quota = None
    if args.cpu_quota:
        quota = CpuQuota(args.cpu_quota)
        quota.add(gateway.pid)
    publisher = None
    try:
        deadline = time.time() + 30
        while not any(d == "Meter" for _, d, _, _ in arrivals.snapshot()):
            if time.time() > deadline:
                raise SystemExit("the gateway delivered nothing in 30 s; see %s" % log.name)
            time.sleep(0.2)
        if not outage:
            cpu0, started = process_cpu(gateway.pid), time.time()
            publisher = PacedPublisher(device, 0, limit=args.floor_messages)
            wanted = set(range(1, args.floor_messages + 1))
            while not wanted <= {v.get("seq") for _, d, _, v in arrivals.snapshot() if d == "S1"}:
                if time.time() - started > 120:
                    break
                time.sleep(0.05)
            last = max(t for t, d, _, _ in arrivals.snapshot() if d == "S1")
            return {"case": "floor: relay burst", "values": args.floor_messages,
                    "values_per_s": round(args.floor_messages / (last - started)),
                    "cpu_s": round(process_cpu(gateway.pid) - cpu0, 2)}
        publisher = PacedPublisher(device, args.mqtt_rate)
        time.sleep(3)
        proxy.swallow() if args.outage_kind == "swallow" else proxy.cut()
        time.sleep(outage)
        restored_wall = time.time()
        cpu0 = process_cpu(gateway.pid)
        proxy.restore()
        published_before = publisher.sent
        deadline = time.time() + 120 + outage
        while True:  # until every MQTT message stamped before the restore arrived and the Modbus ones stop
            items = arrivals.snapshot()
            got = {v.get("seq") for _, d, _, v in items if d == "S1"}
            backlog = [i for i in items if i[2] / 1000.0 <= restored_wall and i[0] >= restored_wall]
            quiet = not backlog or time.time() - max(i[0] for i in backlog) > 3.0
            if (set(range(1, published_before + 1)) <= got and quiet) or time.time() > deadline:
                break
            time.sleep(0.2)
        publisher.stop()
        session = min((i[0] for i in items if i[0] >= restored_wall), default=None)
        drained = max((i[0] for i in backlog), default=session)
        values = sum(len(i[3]) for i in backlog)
        seconds = (drained - session) if session is not None else None
        live = [(i[0] - i[2] / 1000.0) for i in items if i[2] / 1000.0 > restored_wall and i[0] <= drained + 0.5]
        lost = published_before - len(got & set(range(1, published_before + 1)))
        return {"case": "drain after %g s outage (%s)" % (outage, args.outage_kind), "backlog_values": values,
                "mqtt_values": sum(1 for i in backlog if i[1] == "S1"),
                "modbus_values": sum(1 for i in backlog if i[1] == "Meter"),
                "session_after_s": round(session - restored_wall, 2) if session else None,
                "drain_s": round(seconds, 2) if seconds is not None else None,
                "values_per_s": round(values / seconds) if seconds else None,
                "live_p50_s": round(percentile(live, 0.5), 3) if live else None,
                "live_p90_s": round(percentile(live, 0.9), 3) if live else None,
                "live_values": len(live), "lost": lost, "cpu_s": round(process_cpu(gateway.pid) - cpu0, 2)}
    finally:
        if publisher is not None:
            publisher.stop()
        stop_process(gateway)
        if quota is not None:
            quota.close()
        for client in (platform, device):
            client.loop_stop()
            client.disconnect()
        proxy.close()
        modbus.stop()
        platform_broker.stop()
        devices_broker.stop()
        log.close()
        if not args.keep:
            import shutil
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print("kept", folder, file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--outage", type=float, action="append", help="seconds (repeatable); default 60")
    ap.add_argument("--outage-kind", choices=["cut", "swallow"], default="cut",
                    help="cut: connections closed and refused; swallow: packets dropped, connections kept open")
    ap.add_argument("--max-backoff-ms", type=int, default=2000,
                    help="thingsboard.reconnect.maxDelay (60000 is the default a user has)")
    ap.add_argument("--mqtt-rate", type=float, default=20.0)
    ap.add_argument("--modbus-ms", type=int, default=200)
    ap.add_argument("--storage", choices=["file", "sqlite", "memory"], default="file")
    ap.add_argument("--read-count", type=int, default=100,
                    help="max_read_records_count (upstream's example tb_gateway.json has 10)")
    ap.add_argument("--floor-messages", type=int, default=20000)
    ap.add_argument("--skip-floor", action="store_true")
    ap.add_argument("--cpu-quota", type=int, default=0, metavar="PERCENT")
    ap.add_argument("--python", action="append", help="interpreter(s); default: this one and .venv37")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--source", help="run the gateway from this checkout (e.g. an older commit's worktree)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    for python in interpreters(args.python):
        version = python_version(python)
        cases = ([] if args.skip_floor else [0]) + (args.outage or [60.0])
        for _ in range(args.repeat):
            for outage in cases:
                result = one_run(python, args, outage)
                result.update({"python": version, "storage": args.storage, "cpu_quota": args.cpu_quota,
                               "read_count": args.read_count, "max_backoff_ms": args.max_backoff_ms,
                               "source": args.source or "this checkout"})
                print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
