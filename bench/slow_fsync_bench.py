#!/usr/bin/env python3
"""An SD card's slow fsync: the team's relay benchmark (mqtt_relay_bench.py) with file
storage, once as it is and once with every fsync and fdatasync of the gateway delayed by
--delay-ms (30 ms: a slow SD card's flush), on each interpreter side by side.

How the delay is made: an LD_PRELOAD shim (tests/support/fsync_shim.py, compiled here with the machine's C
compiler into a temporary folder) wraps libc's fsync/fdatasync with a sleep; only the
gateway process gets it (`env LD_PRELOAD=... python -m thingsboard_gateway`), not the
brokers or the benchmark. Per run: messages/s delivered, lost, p50 latency; then a run
SIGKILLed at half the messages (--kill-at 0.5), restarted on the same storage: lost and
duplicates (what was delivered but not yet acknowledged in storage comes again), beside
the messages of one commit interval at that rate. The floor, in the same invocation, is
the relay benchmark's bare paho relay at the same rate (it stores nothing).

  export TB_GW_RELAY_BENCH=/path/to/mqtt_relay_bench.py   # or --bench PATH
  python bench/slow_fsync_bench.py [--rate 2000] [--messages 20000] [--delay-ms 30]
  python bench/slow_fsync_bench.py --python .venv37/bin/python --cpu-quota 25 --rate 1000
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, interpreters, python_version  # noqa: E402
from tests.support import fsync_shim  # noqa: E402


def build_shim(folder):
    # type: (str) -> str
    try:
        return fsync_shim.build_shim(folder)
    except RuntimeError as e:
        raise SystemExit(str(e))


def relay(python, bench, shim, delay_ms, args, kill):
    """One run of the relay benchmark: ours with file storage (delay_ms None: the floor,
    the benchmark's bare paho relay, which stores nothing)."""
    if delay_ms is None:
        extra = ["--baseline", "--messages", str(args.messages), "--rate", str(args.rate)]
    else:
        command = "env LD_PRELOAD=%s SLOW_FSYNC_MS=%d %s -m thingsboard_gateway --config {config_file}" % (
            shim, delay_ms, python)
        extra = ["--storage", "file", "--messages", str(args.messages), "--rate", str(args.rate),
                 "--gateway-cmd", command]
    if args.cpu_quota:
        extra += ["--cpu-quota", str(args.cpu_quota)]
    if kill:
        extra += ["--kill-at", "0.5"]
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run([python, bench] + extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, env=env)
    lines = [l for l in result.stdout.splitlines() if l.startswith("{")]
    if not lines:
        sys.stderr.write(result.stdout[-2000:] + result.stderr[-2000:])
        raise SystemExit("the relay benchmark produced no result (exit %d)" % result.returncode)
    out = json.loads(lines[-1])
    row = {"python": python_version(python), "who": "floor" if delay_ms is None else "ours",
           "fsync_delay_ms": delay_ms, "rate": args.rate, "cpu_quota": args.cpu_quota, "sigkill": kill}
    if kill:  # a commit interval (0.1 s, storage's default) of messages at the offered rate
        row["one_commit_interval_msgs"] = int(args.rate * 0.1)
    row.update({k: out.get(k) for k in ("delivered", "lost", "duplicates", "msgs_per_s", "lat_p50_ms")})
    print(json.dumps(row), flush=True)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=os.environ.get("TB_GW_RELAY_BENCH"), help="path of mqtt_relay_bench.py")
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--delay-ms", type=int, default=30)
    ap.add_argument("--cpu-quota", type=int, default=0, metavar="PERCENT")
    ap.add_argument("--no-kill", action="store_true", help="skip the SIGKILL runs")
    ap.add_argument("--python", action="append")
    args = ap.parse_args()
    if not args.bench or not os.path.exists(args.bench):
        raise SystemExit("give the relay benchmark's path: --bench PATH or TB_GW_RELAY_BENCH")
    folder = tempfile.mkdtemp(prefix="slow-fsync-")
    try:
        shim = build_shim(folder)
        for python in interpreters(args.python):
            relay(python, args.bench, shim, None, args, False)
            for delay in (0, args.delay_ms):
                relay(python, args.bench, shim, delay, args, False)
                if not args.no_kill:
                    relay(python, args.bench, shim, delay, args, True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
