#!/usr/bin/env python3
"""The team's end-to-end relay benchmark (mqtt_relay_bench.py) against this gateway, with
its --baseline floor in the same invocation, on each interpreter side by side: the
machine's Python and Python 3.7 (.venv37, which `make test` builds) when present. The
shared benchmark runs on the interpreter under test, so the gateway and its floor relay
(a bare paho relay) both run there.

  export TB_GW_RELAY_BENCH=/path/to/mqtt_relay_bench.py   # or --bench PATH on each call
  python bench/relay_bench.py                       # memory storage, 20,000 messages
  python bench/relay_bench.py --storage file        # also: --cpu-quota 25, --messages N, --idle 10
  python bench/relay_bench.py --storage file --kill-at 0.5
  python bench/relay_bench.py --skip-baseline ...   # only this gateway
  python bench/relay_bench.py --python .venv37/bin/python ...    # only the interpreters named
  python bench/relay_bench.py --cpu-quota 25 --sweep 1000,1500,2000 --repeat 2
        # paced rates: the highest with 0 lost, p50 < 1 s and 90 % of the offered rate
        # delivered, ours against the floor's (--cpu-quota 10 --python .venv37/bin/python: a Pi Zero)
  python bench/relay_bench.py --drain 240 [--cpu-quota 25]
        # the drain case (bench/drain_bench.py): an MQTT device and a Modbus slave, the link
        # to the platform cut for 240 s, then the backlog's drain rate and the live latency
        # during it, beside the relay floor of the same gateway

Prints each run's JSON line, then summary lines. The relay benchmark is run, not
copied, and is not part of this repository: give its path with --bench PATH or
TB_GW_RELAY_BENCH (nothing here reads a path outside the repository by default).
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, interpreters  # noqa: E402
GOOD_P50_MS = 1000.0
KEPT_UP = 0.9


def version_of(python):
    out = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                         stdout=subprocess.PIPE, universal_newlines=True)
    return out.stdout.strip() or "?"


def run(python, bench, args, extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    result = subprocess.run([python, bench] + args + extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, env=env)
    lines = [l for l in result.stdout.splitlines() if l.startswith("{")]
    if not lines:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit("benchmark produced no result (exit %d)" % result.returncode)
    print(lines[-1], flush=True)
    return json.loads(lines[-1])


def ours_args(python):
    return ["--gateway-cmd", "%s -m thingsboard_gateway --config {config_file}" % python]


def limit_args(rate):
    allowed = "%d:1" % rate
    limits = {"messages": allowed, "telemetryMessages": allowed, "telemetryDataPoints": "%d:1" % (rate * 10)}
    return ["--session-limits", json.dumps({"maxPayloadSize": 65536, "maxInflightMessages": 100,
                                            "rateLimits": limits, "gatewayRateLimits": limits})]


def single(python, known, extra):
    """One run of ours and (unless skipped) the floor; returns the summary."""
    if known.limit_rate:
        extra = extra + limit_args(known.limit_rate)
    ours = run(python, known.bench, ours_args(python), extra)
    summary = {"summary": "relay", "python": version_of(python), "storage": ours["storage"],
               "msgs_per_s": ours["msgs_per_s"], "cpu_s_per_1k": ours["cpu_s_per_1k"],
               "lat_p50_ms": ours["lat_p50_ms"], "rss_idle_mb": round(ours["rss_idle_mb"], 1),
               "peak_rss_mb": ours["peak_rss_mb"], "lost": ours["lost"], "duplicates": ours["duplicates"]}
    if known.limit_rate:
        summary["allowed_msgs_per_s"] = known.limit_rate
        summary["peak_platform_msgs_per_1s"] = ours["max_msgs_per_1s"]
        summary["peak_platform_datapoints_per_1s"] = ours["max_datapoints_per_1s"]
        # A bench message carries 4 telemetry datapoints (+1 attribute, which the platform's
        # telemetryDataPoints limit does not count). We keep 80 % of the server's numbers.
        rate = ours["msgs_per_s"] * 4 / (known.limit_rate * 10.0)
        summary["telemetry_datapoints_vs_server_allowed"] = round(rate, 2)
        summary["telemetry_datapoints_vs_our_80pct_allowance"] = round(rate / 0.8, 2)
    if not known.skip_baseline:
        floor = run(python, known.bench, ["--baseline"], [a for a in extra if not a.startswith("--kill")])
        summary.update({"floor_msgs_per_s": floor["msgs_per_s"], "floor_cpu_s_per_1k": floor["cpu_s_per_1k"],
                        "floor_lat_p50_ms": floor["lat_p50_ms"], "floor_rss_idle_mb": round(floor["rss_idle_mb"], 1),
                        "floor_peak_rss_mb": floor["peak_rss_mb"],
                        "throughput_vs_baseline": round(ours["msgs_per_s"] / floor["msgs_per_s"], 2),
                        "cpu_per_msg_vs_baseline": round(ours["cpu_s_per_1k"] / floor["cpu_s_per_1k"], 2)})
    return summary


def good(result):
    """Kept up: nothing lost, p50 under a second, and at least KEPT_UP of the offered rate
    delivered (a relay that falls behind can keep its p50 under a second in a short run)."""
    return (result["lost"] == 0 and result["lat_p50_ms"] is not None and result["lat_p50_ms"] < GOOD_P50_MS
            and result["msgs_per_s"] >= KEPT_UP * result["rate"])


def sweep(python, known, extra):
    """Paced rates, each run `--repeat` times: the highest rate at which every run lost
    nothing with p50 < 1 s, for ours and for the floor."""
    rates = [int(r) for r in known.sweep.split(",")]
    table = {"ours": {}, "floor": {}}
    for rate in rates:
        args = ["--rate", str(rate), "--messages", str(int(rate * known.seconds))]
        for _ in range(known.repeat):
            table["ours"].setdefault(rate, []).append(run(python, known.bench, ours_args(python), extra + args))
            if not known.skip_baseline:
                table["floor"].setdefault(rate, []).append(run(python, known.bench, ["--baseline"], extra + args))
    summary = {"summary": "sweep", "python": version_of(python), "cpu_quota": known.cpu_quota, "rates": {}}
    for who, runs in table.items():
        if not runs:
            continue
        best = 0
        for rate in rates:
            results = runs[rate]
            summary["rates"].setdefault(str(rate), {})[who] = {
                "msgs_per_s": [r["msgs_per_s"] for r in results], "lost": [r["lost"] for r in results],
                "p50_ms": [r["lat_p50_ms"] for r in results]}
            if all(good(r) for r in results):
                best = max(best, rate)
        summary["highest_good_rate_" + who] = best
        summary["rss_idle_mb_" + who] = [round(r["rss_idle_mb"], 1) for rs in runs.values() for r in rs]
    if summary.get("highest_good_rate_floor"):
        summary["highest_good_rate_vs_floor"] = round(summary["highest_good_rate_ours"] /
                                                      float(summary["highest_good_rate_floor"]), 2)
    return summary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=os.environ.get("TB_GW_RELAY_BENCH"),
                    help="path of mqtt_relay_bench.py (default: $TB_GW_RELAY_BENCH)")
    ap.add_argument("--python", action="append", help="interpreter under test (repeatable; default: this "
                                                      "one and .venv37/bin/python when present)")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--limit-rate", type=int, default=0, metavar="MSGS",
                    help="the platform's session limits allow MSGS messages/s (and 10x datapoints); "
                         "reports delivered rate against them")
    ap.add_argument("--sweep", help="comma-separated paced rates (msgs/s) to find the highest good one")
    ap.add_argument("--seconds", type=float, default=8.0, help="publishing time of each sweep run")
    ap.add_argument("--repeat", type=int, default=1, help="runs per sweep rate")
    ap.add_argument("--drain", type=float, metavar="SECONDS", help="the drain case after an outage of SECONDS")
    known, extra = ap.parse_known_args()
    if known.drain:
        drain = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "drain_bench.py"),
                 "--outage", str(known.drain)] + extra
        for python in interpreters(known.python):
            subprocess.run(drain + ["--python", python], check=False)
        return
    if not known.bench:
        raise SystemExit("relay_bench: give the relay benchmark's path: --bench PATH or TB_GW_RELAY_BENCH=PATH")
    if not os.path.exists(known.bench):
        raise SystemExit("relay_bench: no relay benchmark at %s" % known.bench)
    known.cpu_quota = next((extra[i + 1] for i, a in enumerate(extra) if a == "--cpu-quota"), None)
    pythons = [os.path.abspath(p) for p in interpreters(known.python)]
    summaries = [sweep(p, known, extra) if known.sweep else single(p, known, extra) for p in pythons]
    for summary in summaries:
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
