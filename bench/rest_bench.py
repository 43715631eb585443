#!/usr/bin/env python3
"""REST benchmark: the gateway (a real process, file storage, a local Mosquitto as the
platform) with the REST connector; keep-alive clients post JSON as fast as the gateway
answers. Prints posts/s accepted (200 = stored), the statuses, p50/p95 from POST to the
message reaching the platform, and the gateway's CPU and RSS; on each interpreter (the
machine's Python and .venv37's when present), optionally under a CPU quota.

  python bench/rest_bench.py [--posts 5000] [--clients 4] [--cpu-quota 25]
"""
import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CpuQuota, ROOT, free_port, interpreters, process_cpu, python_version, rss_mb, wait_port  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402
from tests.support.gateway import write_config  # noqa: E402
from tests.support.platform import PlatformDouble  # noqa: E402



def proc_cpu_rss(pid):
    return process_cpu(pid), rss_mb(pid)


def post_all(port, number, count, statuses, lock):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for i in range(count):
        body = json.dumps({"sensorName": "Bench %d" % number, "seq": i, "sent": time.time(), "temp": 21.5})
        connection.request("POST", "/data", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        with lock:
            statuses[response.status] = statuses.get(response.status, 0) + 1
    connection.close()


def one_run(python, args, quota):
    folder = tempfile.mkdtemp(prefix="tbgw-rest-bench-")
    broker = Mosquitto(folder, "platform").start()
    platform = PlatformDouble(broker.port)
    port = free_port()
    rest = {"server": {"host": "127.0.0.1", "port": port, "maxConcurrentRequests": 64},
            "mapping": [{"endpoint": "/data", "HTTPMethods": ["POST"], "converter": {
                "type": "json", "deviceInfo": {"deviceNameExpressionSource": "request",
                                               "deviceNameExpression": "${sensorName}"},
                "timeseries": [{"type": "long", "key": "seq", "value": "${seq}"},
                               {"type": "double", "key": "sent", "value": "${sent}"},
                               {"type": "double", "key": "temp", "value": "${temp}"}]}}]}
    path = write_config(folder, broker.port, files={"rest.json": rest},
                        connectors=[{"name": "REST", "type": "rest", "configuration": "rest.json"}],
                        storage={"type": "file", "data_folder_path": os.path.join(folder, "data")})
    log = open(os.path.join(folder, "gateway.out"), "wb")
    gateway = subprocess.Popen([python, "-m", "thingsboard_gateway", "--config", path], stdout=log,
                               stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=ROOT), cwd=ROOT)
    try:
        if quota is not None:
            quota.add(gateway.pid)
        if not wait_port(port, 30):
            raise RuntimeError("the gateway did not open its REST port")
        time.sleep(1.0)
        cpu0, _ = proc_cpu_rss(gateway.pid)
        statuses, lock = {}, threading.Lock()
        per_client = args.posts // args.clients
        start = time.monotonic()
        threads = [threading.Thread(target=post_all, args=(port, n, per_client, statuses, lock))
                   for n in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        posting = time.monotonic() - start
        total = per_client * args.clients

        def arrived():
            return [(t, v) for t, topic, body in list(platform.messages) if topic == "v1/gateway/telemetry"
                    for d, entries in body.items() for e in entries for v in [e.get("values", e)] if "sent" in v]
        deadline = time.monotonic() + 120
        while len(arrived()) < statuses.get(200, 0) and time.monotonic() < deadline:
            time.sleep(0.2)
        cpu1, rss = proc_cpu_rss(gateway.pid)
        got = arrived()
        latencies = sorted(t - v["sent"] for t, v in got)
        seqs = {(v["seq"], v["sent"]) for _, v in got}
        return {"posts": total, "statuses": statuses, "posts_per_s": round(statuses.get(200, 0) / posting),
                "delivered": len(seqs), "lost_after_200": statuses.get(200, 0) - len(seqs),
                "p50_ms": round(1000 * latencies[len(latencies) // 2]) if latencies else None,
                "p95_ms": round(1000 * latencies[int(len(latencies) * 0.95)]) if latencies else None,
                "gateway_cpu_s": round(cpu1 - cpu0, 2),
                "gateway_cpu_ms_per_post": round(1000.0 * (cpu1 - cpu0) / max(1, total), 3),
                "gateway_rss_mb": round(rss, 1)}
    finally:
        gateway.kill()
        gateway.wait()
        log.close()
        platform.close()
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--posts", type=int, default=5000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--cpu-quota", type=int, default=0, metavar="PERCENT")
    ap.add_argument("--python", action="append")
    args = ap.parse_args()
    pythons = interpreters(args.python)
    quota = CpuQuota(args.cpu_quota) if args.cpu_quota else None
    try:
        for python in pythons:
            version = python_version(python)
            result = one_run(python, args, quota)
            result.update({"python": version, "clients": args.clients, "cpu_quota": args.cpu_quota,
                           "storage": "file"})
            print(json.dumps(result), flush=True)
    finally:
        if quota is not None:
            quota.close()


if __name__ == "__main__":
    main()
