#!/usr/bin/env python3
"""Serial and UDP benchmark: our serial/socket connector against a plain pyserial/socket
read loop doing the same job (cut lines, read the number, build the record), in the same
invocation, each in its own process under the same CPU quota, on each interpreter (the
machine's Python and .venv37's when present).

  python bench/line_bench.py --kind serial --rate 2000 --count 20000 [--cpu-quota 25]
  python bench/line_bench.py --kind udp --rate 5000 --count 50000 --cpu-quota 25
  (--rate 0: as fast as the feeder can write)

A feeder process writes "<n>.25\\r\\n" lines into a socat pty pair (serial) or sends them
as datagrams (UDP). Prints one JSON line per run (messages received, lost, rate, CPU s per
1,000 messages) and a summary with the ratio to the floor (target <= 1.5).
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CountingGateway, CpuQuota, ROOT, cpu, free_port, interpreters, python_version, rss_mb  # noqa: E402

QUIET = 3.0  # seconds without a message that end a run


def feed(kind, target, rate, count):
    """The device side: `count` lines at `rate`/s (0: flat out)."""
    if kind == "serial":
        import serial
        port = serial.Serial(target, 115200)
        send = port.write
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        address = ("127.0.0.1", int(target))
        send = lambda data: sock.sendto(data, address)  # noqa: E731
    start = time.monotonic()
    batch = max(1, rate // 200) if rate else 50
    for i in range(0, count, batch):
        for j in range(i, min(count, i + batch)):
            send(b"%d.25\r\n" % j)
        if rate:
            delay = start + (i + batch) / float(rate) - time.monotonic()
            if delay > 0:
                time.sleep(delay)


def subject_connector(kind, target, count):
    gateway = CountingGateway()
    if kind == "serial":
        from thingsboard_gateway.connectors.serial.connector import SerialConnector
        connector = SerialConnector(gateway, {"name": "bench", "devices": [{
            "name": "Meter", "port": target, "baudrate": 115200,
            "telemetry": [{"key": "value", "type": "float", "untilDelimiter": "\r"}]}]}, "serial")
    else:
        from thingsboard_gateway.connectors.socket.connector import SocketConnector
        connector = SocketConnector(gateway, {"name": "bench", "socket": {"type": "UDP", "port": int(target)},
                                              "devices": [{"address": "*:*", "deviceName": "Meter", "telemetry": [
                                                  {"key": "value", "type": "double", "byteFrom": 0, "byteTo": -1}]}]},
                                    "socket")
    connector.open()
    print("ready", flush=True)
    return wait(lambda: gateway.records, count, connector.close)


def subject_floor(kind, target, count):
    """The plain library loop: the same lines, numbers and records, handed to the same
    gateway stand-in, nothing else."""
    gateway = CountingGateway()
    if kind == "serial":
        import serial
        port = serial.Serial(target, 115200, timeout=0.1)
        buffer = bytearray()

        def step():
            data = port.read(1)
            if data:
                data += port.read(port.in_waiting)
            buffer.extend(data)
            while True:
                end = buffer.find(b"\n")
                if end < 0:
                    break
                line = bytes(buffer[:end])
                del buffer[:end + 1]
                gateway.send_to_storage("floor", "floor", {
                    "deviceName": "Meter", "deviceType": "default", "attributes": {},
                    "telemetry": [{"ts": int(time.time() * 1000), "values": {"value": float(line.split(b"\r")[0])}}]})
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", int(target)))
        sock.settimeout(0.1)

        def step():
            try:
                data, _ = sock.recvfrom(1024)
            except socket.timeout:
                return
            gateway.send_to_storage("floor", "floor", {
                "deviceName": "Meter", "deviceType": "default", "attributes": {},
                "telemetry": [{"ts": int(time.time() * 1000), "values": {"value": float(data.strip())}}]})
    print("ready", flush=True)
    return wait(lambda: gateway.records, count, None, step)


def wait(received, count, close, step=None):
    start_cpu, first, last, seen = cpu(), None, time.monotonic(), 0
    while seen < count and time.monotonic() - last < QUIET:
        if step is not None:
            step()
        else:
            time.sleep(0.02)
        now_seen = received()
        if now_seen != seen:
            first = first or time.monotonic()
            last, seen = time.monotonic(), now_seen
    used = cpu() - start_cpu - (0 if step else 0)
    if close:
        close()
    return {"received": seen, "cpu_s": round(used, 3), "seconds": round(last - (first or last), 2),
            "rss_mb": round(rss_mb(), 1)}


def one_run(python, args, which, quota):
    target = str(free_port())
    socat = None
    if args.kind == "serial":
        base = "/tmp/tbgw-bench-%d" % os.getpid()
        socat = subprocess.Popen(["socat", "pty,raw,echo=0,link=%s-dev" % base, "pty,raw,echo=0,link=%s-gw" % base],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not os.path.exists(base + "-gw") or not os.path.exists(base + "-dev"):
            time.sleep(0.05)
        target, device = base + "-gw", base + "-dev"
    else:
        device = target
    env = dict(os.environ, PYTHONPATH=ROOT)
    subject = subprocess.Popen([python, __file__, "--subject", which, "--kind", args.kind, "--target", target,
                                "--count", str(args.count)], stdout=subprocess.PIPE, universal_newlines=True, env=env)
    try:
        if quota is not None:
            quota.add(subject.pid)
        assert subject.stdout.readline().strip() == "ready"
        feeder = subprocess.Popen([python, __file__, "--feed", device, "--kind", args.kind, "--rate", str(args.rate),
                                   "--count", str(args.count)], env=env)
        result = json.loads(subject.stdout.readline())
        feeder.wait(60)
    finally:
        subject.kill()
        subject.wait()
        if socat is not None:
            socat.terminate()
            socat.wait()
    seconds = result["seconds"] or 1e-9
    result.update({"run": which, "kind": args.kind, "lost": args.count - result["received"],
                   "msgs_per_s": round(result["received"] / seconds), "cpu_s_per_1k":
                   round(1000.0 * result["cpu_s"] / max(1, result["received"]), 4)})
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["serial", "udp"], default="serial")
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--cpu-quota", type=int, default=0, metavar="PERCENT")
    ap.add_argument("--python", action="append", help="interpreter(s) to run on (default: this one and .venv37's)")
    ap.add_argument("--subject", help=argparse.SUPPRESS)
    ap.add_argument("--target", help=argparse.SUPPRESS)
    ap.add_argument("--feed", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.feed:
        feed(args.kind, args.feed, args.rate, args.count)
        return
    if args.subject:
        run = subject_connector if args.subject == "connector" else subject_floor
        print(json.dumps(run(args.kind, args.target, args.count)), flush=True)
        return
    if args.kind == "serial" and shutil.which("socat") is None:
        sys.exit("socat is needed for the serial benchmark")
    pythons = interpreters(args.python)
    quota = CpuQuota(args.cpu_quota) if args.cpu_quota else None
    try:
        for python in pythons:
            version = python_version(python)
            results = {}
            for which in ("connector", "floor"):
                results[which] = one_run(python, args, which, quota)
                results[which].update({"python": version, "rate": args.rate, "cpu_quota": args.cpu_quota})
                print(json.dumps(results[which]), flush=True)
            print(json.dumps({"summary": args.kind, "python": version, "rate": args.rate, "cpu_quota": args.cpu_quota,
                              "msgs_per_s": [results["connector"]["msgs_per_s"], results["floor"]["msgs_per_s"]],
                              "lost": [results["connector"]["lost"], results["floor"]["lost"]],
                              "cpu_per_msg_vs_floor": round(results["connector"]["cpu_s_per_1k"] /
                                                            max(1e-9, results["floor"]["cpu_s_per_1k"]), 2),
                              "target_cpu_ratio": 1.5}), flush=True)
    finally:
        if quota is not None:
            quota.close()


if __name__ == "__main__":
    main()
