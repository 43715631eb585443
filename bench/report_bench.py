#!/usr/bin/env python3
"""Report strategy benchmark: a gateway process polls R Modbus registers every P ms from
a pymodbus server whose registers change by C % per poll, and delivers to a local
Mosquitto; a counting subscriber stands in for ThingsBoard. ON_CHANGE against ON_RECEIVED
(the floor: every polled value sent), in the same invocation, on each interpreter (the
machine's Python and .venv37's when present).

Prints one JSON line per run and a summary per interpreter: values and messages per
second reaching the platform, and the gateway's CPU seconds per 1,000 polled values.

  python bench/report_bench.py [--registers 200] [--period-ms 100] [--change 1] [--seconds 20]
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
from common import (ROOT, free_port, interpreters, listener, process_cpu, python_version, stop_process,  # noqa: E402
                    wait_port, write_gateway_config)

sys.path.insert(0, ROOT)
from tests.support.broker import Mosquitto  # noqa: E402


# The Modbus server, with a thread that changes `change` % of the registers every period.
SERVER = """
import random, sys, threading, time
from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server.sync import StartTcpServer
port, registers, period, change = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
store = ModbusSlaveContext(hr=ModbusSequentialDataBlock(0, [100] * (registers + 1)), zero_mode=True)
context = ModbusServerContext(slaves=store, single=True)
def churn():
    rng, carry = random.Random(1), 0.0
    while True:
        time.sleep(period)
        carry += registers * change / 100.0
        while carry >= 1:
            carry -= 1
            address = rng.randrange(registers)
            store.setValues(3, address, [(store.getValues(3, address, 1)[0] + 1) % 30000])
threading.Thread(target=churn, daemon=True).start()
StartTcpServer(context, address=("127.0.0.1", port))
"""


class Counter(object):
    """Counts telemetry values and messages published on v1/gateway/telemetry."""

    def __init__(self, port):
        self.values = self.messages = 0
        self.lock = threading.Lock()
        self.client = listener(port, "report-bench-%d" % os.getpid(), "v1/gateway/telemetry", self._on_message)

    def _on_message(self, client, userdata, msg):
        body = json.loads(msg.payload.decode())
        count = sum(len(e.get("values", e)) for entries in body.values()
                    for e in (entries if isinstance(entries, list) else [entries]))
        with self.lock:
            self.values += count
            self.messages += 1

    def read(self):
        with self.lock:
            return self.values, self.messages

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()




def run(python, strategy, args, folder, broker_port, modbus_port):
    slave = {"deviceName": "Meter", "deviceType": "meter", "unitId": 1, "pollPeriod": args.period_ms,
             "timeout": 1, "type": "tcp", "host": "127.0.0.1", "port": modbus_port,
             "timeseries": [{"tag": "r%d" % r, "type": "16int", "functionCode": 3, "address": r}
                            for r in range(args.registers)]}
    path = write_gateway_config(folder, broker_port, "modbus", "modbus.json",
                                {"reportStrategy": {"type": strategy}, "master": {"slaves": [slave]}})
    counter = Counter(broker_port)
    env = dict(os.environ, PYTHONPATH=ROOT)
    gateway = subprocess.Popen([python, "-m", "thingsboard_gateway", "--config", path], env=env, cwd=folder,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(args.warmup)
        values0, messages0 = counter.read()
        cpu0, start = process_cpu(gateway.pid), time.monotonic()
        time.sleep(args.seconds)
        values1, messages1 = counter.read()
        cpu1, elapsed = process_cpu(gateway.pid), time.monotonic() - start
    finally:
        stop_process(gateway)
        counter.close()
    polled = elapsed * 1000.0 / args.period_ms * args.registers  # at the configured cadence
    return {"python": python_version(python), "strategy": strategy, "seconds": round(elapsed, 1),
            "values_per_s": round((values1 - values0) / elapsed, 1),
            "messages_per_s": round((messages1 - messages0) / elapsed, 1),
            "polled_values_per_s": round(polled / elapsed, 1),
            "cpu_s_per_1000_polled": round((cpu1 - cpu0) / polled * 1000.0, 4)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--registers", type=int, default=200)
    ap.add_argument("--period-ms", type=int, default=100)
    ap.add_argument("--change", type=float, default=1.0, help="percent of the registers changed per poll")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--python", action="append", help="interpreter under test (repeatable)")
    args = ap.parse_args()
    pythons = interpreters(args.python)
    folder = tempfile.mkdtemp(prefix="report-bench-")
    broker = Mosquitto(folder, "platform").start()
    modbus_port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(modbus_port), str(args.registers),
                               str(args.period_ms / 1000.0), str(args.change)])
    try:
        if not wait_port(modbus_port):
            raise SystemExit("the Modbus server did not start")
        for python in pythons:
            results = {}
            for strategy in ("ON_RECEIVED", "ON_CHANGE"):
                results[strategy] = run(python, strategy, args, folder, broker.port, modbus_port)
                print(json.dumps(results[strategy]), flush=True)
            floor, ours = results["ON_RECEIVED"], results["ON_CHANGE"]
            print(json.dumps({"python": floor["python"], "summary": True,
                              "values_sent_fewer_x": round(floor["values_per_s"] / max(ours["values_per_s"], 0.01), 1),
                              "cpu_per_polled_value_x": round(ours["cpu_s_per_1000_polled"]
                                                              / max(floor["cpu_s_per_1000_polled"], 1e-9), 2)}),
                  flush=True)
    finally:
        server.kill()
        server.wait()
        broker.stop()


if __name__ == "__main__":
    main()
