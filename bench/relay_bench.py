#!/usr/bin/env python3
"""The relay benchmark of ../shared/bench/mqtt_relay_bench.py against this gateway, with
its --baseline floor in the same invocation, and the figures the targets are stated in.

  python bench/relay_bench.py                       # memory storage, 20,000 messages
  python bench/relay_bench.py --storage file        # also: --cpu-quota 25, --messages N, --idle 10
  python bench/relay_bench.py --storage file --kill-at 0.5
  python bench/relay_bench.py --skip-baseline ...   # only this gateway

Prints each run's JSON line, then a summary line comparing them. The shared benchmark
is run, not copied: its path is ../shared/bench/ beside this project (or --bench PATH).
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BENCH = os.path.join(os.path.dirname(ROOT), "shared", "bench", "mqtt_relay_bench.py")


def run(bench, args, extra):
    command = [sys.executable, bench] + args + extra
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    lines = [l for l in result.stdout.splitlines() if l.startswith("{")]
    if not lines:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit("benchmark produced no result (exit %d)" % result.returncode)
    print(lines[-1])
    return json.loads(lines[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=DEFAULT_BENCH)
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--limit-rate", type=int, default=0, metavar="MSGS",
                    help="the platform's session limits allow MSGS messages/s (and 10x datapoints); "
                         "reports delivered rate against them")
    known, extra = ap.parse_known_args()
    if not os.path.exists(known.bench):
        raise SystemExit("shared benchmark not found at %s (use --bench PATH)" % known.bench)
    python = sys.executable
    gateway_cmd = "%s -m thingsboard_gateway --config {config_file}" % python
    env_root = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = ROOT + (os.pathsep + env_root if env_root else "")
    if known.limit_rate:
        allowed = "%d:1" % known.limit_rate
        limits = {"messages": allowed, "telemetryMessages": allowed,
                  "telemetryDataPoints": "%d:1" % (known.limit_rate * 10)}
        extra += ["--session-limits", json.dumps({"maxPayloadSize": 65536, "maxInflightMessages": 100,
                                                  "rateLimits": limits, "gatewayRateLimits": limits})]
    ours = run(known.bench, ["--gateway-cmd", gateway_cmd], extra)
    summary = {"summary": "relay", "storage": ours["storage"], "msgs_per_s": ours["msgs_per_s"],
               "cpu_s_per_1k": ours["cpu_s_per_1k"], "peak_rss_mb": ours["peak_rss_mb"], "lost": ours["lost"],
               "duplicates": ours["duplicates"]}
    if known.limit_rate:
        summary["allowed_msgs_per_s"] = known.limit_rate
        summary["allowed_datapoints_per_s"] = known.limit_rate * 10
        summary["peak_platform_msgs_per_1s"] = ours["max_msgs_per_1s"]
        summary["peak_platform_datapoints_per_1s"] = ours["max_datapoints_per_1s"]
        # A bench message carries 4 telemetry datapoints (+1 attribute, which the platform's
        # telemetryDataPoints limit does not count). We keep 80 % of the server's numbers.
        rate = ours["msgs_per_s"] * 4 / (known.limit_rate * 10.0)
        summary["telemetry_datapoints_vs_server_allowed"] = round(rate, 2)
        summary["telemetry_datapoints_vs_our_80pct_allowance"] = round(rate / 0.8, 2)
    if not known.skip_baseline:
        baseline_extra = [a for a in extra if not a.startswith("--kill")]
        floor = run(known.bench, ["--baseline"], baseline_extra)
        summary["throughput_vs_baseline"] = round(ours["msgs_per_s"] / floor["msgs_per_s"], 2)
        summary["cpu_per_msg_vs_baseline"] = round(ours["cpu_s_per_1k"] / floor["cpu_s_per_1k"], 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
