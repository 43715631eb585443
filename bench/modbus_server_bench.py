#!/usr/bin/env python3
"""Modbus server benchmark: the gateway serving upstream's `slave` section (a gateway
process, its platform a local Mosquitto) against a bare pymodbus 2.5 TCP server (the
floor: StartTcpServer on the same block), in the same invocation, on each interpreter
(the machine's Python and .venv37's when present), each server confined to a share of
one core (--cpu-quota, default 25 %).

Masters: M pymodbus sync clients in threads of this process, each reading 10 holding
registers in a loop for S seconds. Prints one JSON line per server and a summary per
interpreter: requests per second served and the server process's CPU seconds per 1,000
requests.

  python bench/modbus_server_bench.py [--seconds 10] [--masters 4] [--cpu-quota 25]
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
from common import CpuQuota, ROOT, free_port, interpreters, process_cpu, python_version, stop_process, wait_port  # noqa: E402

sys.path.insert(0, ROOT)
from tests.support.broker import Mosquitto  # noqa: E402

REGISTERS = 40

FLOOR = """
import sys
from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server.sync import StartTcpServer
store = ModbusSlaveContext(hr=ModbusSequentialDataBlock(0, list(range(%d))), zero_mode=True)
StartTcpServer(ModbusServerContext(slaves=store, single=True), address=("127.0.0.1", int(sys.argv[1])))
""" % REGISTERS




def masters(port, count, seconds):
    """Requests answered by `count` clients reading in a loop for `seconds`."""
    from pymodbus.client.sync import ModbusTcpClient
    done = []
    stop = threading.Event()

    def loop():
        client = ModbusTcpClient("127.0.0.1", port=port, timeout=5)
        n = 0
        try:
            while not stop.is_set():
                if not client.read_holding_registers(0, 10, unit=1).isError():
                    n += 1
        finally:
            client.close()
            done.append(n)
    threads = [threading.Thread(target=loop) for _ in range(count)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(10)
    return sum(done)


def gateway_files(folder, broker_port, port):
    values = [{"tag": "r%d" % i, "type": "16int", "address": i, "value": i} for i in range(REGISTERS)]
    with open(os.path.join(folder, "modbus.json"), "w") as f:
        json.dump({"slave": {"type": "tcp", "host": "127.0.0.1", "port": port, "unitId": 1, "deviceName": "Served",
                             "sendDataToThingsBoard": False, "values": {"holding_registers": {"timeseries": values}}}},
                  f)
    path = os.path.join(folder, "tb_gateway.json")
    with open(path, "w") as f:
        json.dump({"thingsboard": {"host": "127.0.0.1", "port": broker_port,
                                   "security": {"type": "accessToken", "accessToken": "BENCH"},
                                   "statistics": {"enable": False}},
                   "storage": {"type": "memory"},
                   "connectors": [{"name": "Modbus", "type": "modbus", "configuration": "modbus.json"}]}, f)
    return path


def measure(command, port, args, env=None):
    quota = CpuQuota(args.cpu_quota) if args.cpu_quota else None
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if quota:
            quota.add(server.pid)
        if not wait_port(port, 30):
            raise SystemExit("the server on port %d did not start" % port)
        time.sleep(1.0)
        cpu0 = process_cpu(server.pid)
        requests = masters(port, args.masters, args.seconds)
        cpu = process_cpu(server.pid) - cpu0
    finally:
        stop_process(server)
        if quota:
            quota.close()
    return {"requests_per_s": round(requests / args.seconds, 1),
            "cpu_s_per_1000_requests": round(cpu / max(requests, 1) * 1000.0, 4)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--masters", type=int, default=4)
    ap.add_argument("--cpu-quota", type=int, default=25, metavar="PERCENT", help="0: unconfined")
    ap.add_argument("--python", action="append", help="interpreter under test (repeatable)")
    args = ap.parse_args()
    pythons = interpreters(args.python)
    folder = tempfile.mkdtemp(prefix="modbus-server-bench-")
    broker = Mosquitto(folder, "platform").start()
    try:
        for python in pythons:
            version = python_version(python)
            port = free_port()
            floor = measure([python, "-c", FLOOR, str(port)], port, args)
            floor.update(python=version, server="bare pymodbus")
            print(json.dumps(floor), flush=True)
            port = free_port()
            path = gateway_files(folder, broker.port, port)
            ours = measure([python, "-m", "thingsboard_gateway", "--config", path], port, args,
                           env=dict(os.environ, PYTHONPATH=ROOT))
            ours.update(python=version, server="gateway")
            print(json.dumps(ours), flush=True)
            print(json.dumps({"python": version, "summary": True, "cpu_quota": args.cpu_quota,
                              "requests_per_s_x": round(ours["requests_per_s"] / max(floor["requests_per_s"], 0.1), 2),
                              "cpu_per_request_x": round(ours["cpu_s_per_1000_requests"]
                                                         / max(floor["cpu_s_per_1000_requests"], 1e-9), 2)}),
                  flush=True)
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
