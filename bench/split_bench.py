#!/usr/bin/env python3
"""Split cost per value: one telemetry entry of N Double values (as an OPC-UA poll of N
nodes gives) packed into messages of at most --max-payload bytes, for N = 100, 1,000,
10,000 and 100,000, on each interpreter (the machine's Python and .venv37's when present).
The cost per value must stay flat (within 1.5x from 100 to 100,000).

  python bench/split_bench.py [--max-payload 1000]
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, interpreters  # noqa: E402

MEASURE = """
import json, sys, time
sys.path.insert(0, %r)
from thingsboard_gateway.platform.packing import pack
from thingsboard_gateway.storage.record import Record
max_payload = int(sys.argv[1])
out = {"python": "%%d.%%d" %% sys.version_info[:2]}
for n in (100, 1000, 10000, 100000):
    values = {"ns=2;i=%%d" %% i: i * 1.5 for i in range(n)}
    record = Record.build("OPC-UA Device", "default", [{"ts": 1700000000000, "values": values}], {}, "t")
    rounds = max(1, 200000 // n)
    start = time.perf_counter()
    for _ in range(rounds):
        packed = pack([record], max_payload)
    elapsed = time.perf_counter() - start
    assert sum(m.datapoints for m in packed.messages) == n
    out["us_per_value_%%d" %% n] = round(elapsed / rounds / n * 1e6, 3)
    out["messages_%%d" %% n] = len(packed.messages)
costs = [out["us_per_value_%%d" %% n] for n in (100, 1000, 10000, 100000)]
out["flat_within_x"] = round(max(costs) / min(costs), 2)
print(json.dumps(out))
""" % ROOT


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-payload", type=int, default=1000,
                    help="bytes; small enough that every size is split (the OPC-UA run used 52428)")
    ap.add_argument("--python", action="append")
    args = ap.parse_args()
    pythons = interpreters(args.python)
    for python in pythons:
        result = subprocess.run([python, "-c", MEASURE, str(args.max_payload)], stdout=subprocess.PIPE,
                                universal_newlines=True)
        print(result.stdout.strip() or json.dumps({"python": python, "error": result.returncode}), flush=True)


if __name__ == "__main__":
    main()
