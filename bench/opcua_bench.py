#!/usr/bin/env python3
"""OPC-UA benchmark: D devices x V variables, polled every P ms, then in subscription mode.

A python-opcua server (in a child process) changes every variable every P ms; the
connector runs in this process with a counting stand-in for the gateway. For each mode:
values delivered per second, CPU seconds per 1,000 values (this process: the connector
and python-opcua's client threads), RSS.

  python bench/opcua_bench.py [--devices 20] [--variables 25] [--period-ms 100] [--seconds 30]
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CountingGateway, cpu, free_port, rss_mb, wait_port  # noqa: E402

SERVER = """
import sys, time, logging
logging.disable(logging.CRITICAL)
from opcua import Server
port, devices, variables, period = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
server = Server()
server.set_endpoint("opc.tcp://127.0.0.1:%d/bench/" % port)
idx = server.register_namespace("http://bench")
folder = server.get_objects_node().add_folder(idx, "Plant")
nodes = []
for d in range(devices):
    obj = folder.add_object(idx, "Device%d" % d)
    obj.add_variable(idx, "Name", "Bench Device %d" % d)
    nodes += [obj.add_variable(idx, "V%d" % v, 0.0) for v in range(variables)]
server.start()
tick = 0
while True:
    tick += 1
    for n in nodes:
        n.set_value(float(tick))
    time.sleep(period)
"""










def run(url, args, subscriptions):
    from thingsboard_gateway.connectors.opcua.connector import OpcUaConnector
    config = {"name": "bench", "server": {"url": url, "pollPeriodInMillis": args.period_ms,
                                          "enableSubscriptions": subscriptions,
                                          "subCheckPeriodInMillis": args.period_ms},
              "mapping": [{"deviceNodePattern": "Root\\.Objects\\.Plant\\.Device\\d+",
                           "deviceInfo": {"deviceNameExpressionSource": "constant", "deviceNameExpression": "D"},
                           "timeseries": [{"key": "v%d" % v, "type": "path", "value": "${V%d}" % v}
                                          for v in range(args.variables)]}]}
    config["mapping"][0]["deviceInfo"] = {"deviceNameExpressionSource": "path", "deviceNameExpression": "${Name}"}
    gateway = CountingGateway()
    connector = OpcUaConnector(gateway, config, "opcua")
    connector.open()
    deadline = time.time() + 30
    while not connector.devices and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # initial values and subscriptions settle
    start_values, start_cpu, start = gateway.values, cpu(), time.monotonic()
    time.sleep(args.seconds)
    values, used, elapsed = gateway.values - start_values, cpu() - start_cpu, time.monotonic() - start
    memory = rss_mb()
    connector.close()
    return {"mode": "subscription" if subscriptions else "polling", "devices_found": len(connector.devices),
            "values_per_s": round(values / elapsed, 1), "cpu_s": round(used, 2),
            "cpu_s_per_1k_values": round(1000 * used / max(values, 1), 4), "rss_mb": round(memory, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--variables", type=int, default=25)
    ap.add_argument("--period-ms", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=30)
    args = ap.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(args.devices), str(args.variables),
                               str(args.period_ms / 1000.0)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        url = "opc.tcp://127.0.0.1:%d/bench/" % port
        results = [run(url, args, False), run(url, args, True)]
        for result in results:
            print(json.dumps(result))
        print(json.dumps({"summary": "opcua", "subscription_cpu_per_value_vs_polling": round(
            results[1]["cpu_s_per_1k_values"] / max(results[0]["cpu_s_per_1k_values"], 1e-9), 2)}))
    finally:
        server.terminate()
        server.wait(5)


if __name__ == "__main__":
    main()
