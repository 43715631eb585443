#!/usr/bin/env python3
"""Modbus polling benchmark: one connector polling N slaves x R registers every P ms.

A pymodbus TCP server runs in a child process; the connector runs in this process with
a counting stand-in for the gateway (no platform), so the CPU measured is the
connector's. The floor is a plain pymodbus client loop issuing the same reads at the
same cadence. Prints JSON lines: achieved polls vs configured, CPU seconds per 1,000
register reads, for both, and the ratio.

  python bench/modbus_poll_bench.py [--slaves 50] [--registers 20] [--period-ms 100] [--seconds 30]
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CountingGateway, cpu, free_port, wait_port  # noqa: E402

SERVER = """
import sys
from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server.sync import StartTcpServer
block = lambda: ModbusSequentialDataBlock(0, list(range(1000)))
context = ModbusServerContext(slaves=ModbusSlaveContext(hr=block(), ir=block(), co=block(), di=block(),
                                                        zero_mode=True), single=True)
StartTcpServer(context, address=("127.0.0.1", int(sys.argv[1])))
"""








def run_connector(port, args):
    from thingsboard_gateway.connectors.modbus.connector import ModbusConnector
    slaves = [{"type": "tcp", "host": "127.0.0.1", "port": port, "unitId": 1, "deviceName": "Slave %d" % i,
               "pollPeriod": args.period_ms, "timeout": 1,
               "timeseries": [{"tag": "r%d" % r, "type": "16int", "functionCode": 3, "address": r}
                              for r in range(args.registers)]} for i in range(args.slaves)]
    gateway = CountingGateway()
    connector = ModbusConnector(gateway, {"name": "bench", "master": {"slaves": slaves}}, "modbus")
    start_cpu, start = cpu(), time.monotonic()
    connector.open()
    time.sleep(args.seconds)
    polls = sum(p.polls for p in connector.pollers.values())
    used, elapsed = cpu() - start_cpu, time.monotonic() - start
    connector.close()
    return polls, used, elapsed, gateway.records


def run_floor(port, args):
    from pymodbus.client.sync import ModbusTcpClient
    clients = [ModbusTcpClient("127.0.0.1", port=port, timeout=1) for _ in range(args.slaves)]
    for client in clients:
        client.connect()
    period = args.period_ms / 1000.0
    polls = 0
    start_cpu, start = cpu(), time.monotonic()
    next_tick = start
    while time.monotonic() - start < args.seconds:
        for client in clients:
            client.read_holding_registers(0, args.registers, unit=1)
            polls += 1
        next_tick += period
        delay = next_tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    used, elapsed = cpu() - start_cpu, time.monotonic() - start
    for client in clients:
        client.close()
    return polls, used, elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slaves", type=int, default=50)
    ap.add_argument("--registers", type=int, default=20)
    ap.add_argument("--period-ms", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=30)
    args = ap.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        configured = args.slaves * args.seconds * 1000.0 / args.period_ms
        polls, used, elapsed, records = run_connector(port, args)
        ours = {"run": "connector", "configured_polls": int(configured), "polls": polls,
                "on_time_pct": round(100.0 * polls / configured, 1), "records": records,
                "cpu_s": round(used, 2), "cpu_s_per_1k_register_reads": round(1000 * used / (polls * args.registers), 4)}
        print(json.dumps(ours))
        floor_polls, floor_used, _ = run_floor(port, args)
        floor = {"run": "floor (plain pymodbus loop)", "polls": floor_polls,
                 "on_time_pct": round(100.0 * floor_polls / configured, 1), "cpu_s": round(floor_used, 2),
                 "cpu_s_per_1k_register_reads": round(1000 * floor_used / (floor_polls * args.registers), 4)}
        print(json.dumps(floor))
        print(json.dumps({"summary": "modbus", "on_time_pct": ours["on_time_pct"], "target_on_time_pct": 95,
                          "cpu_per_read_vs_floor": round(ours["cpu_s_per_1k_register_reads"] /
                                                         floor["cpu_s_per_1k_register_reads"], 2),
                          "target_cpu_ratio": 1.5}))
    finally:
        server.terminate()
        server.wait(5)


if __name__ == "__main__":
    main()
