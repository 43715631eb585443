#!/usr/bin/env python3
"""`make demo`: simulated devices -> gateway -> a local Mosquitto standing in for ThingsBoard.

Starts Mosquitto on a free port, runs the gateway with config/ (the simulator
extension) pointed at it, and prints what the platform receives. With TB_GW_HOST and
TB_GW_ACCESS_TOKEN set it runs against that real ThingsBoard instead (no local broker).
DEMO_SECONDS (default 20; 0 = until Ctrl-C) bounds the run.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import paho.mqtt.client as mqtt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tests.support.broker import Mosquitto  # noqa: E402  (the same broker helper the tests use)


def prepare_config(workdir, port):
    config_dir = os.path.join(workdir, "config")
    shutil.copytree(os.path.join(ROOT, "config"), config_dir)
    path = os.path.join(config_dir, "tb_gateway.json")
    with open(path) as f:
        config = json.load(f)
    config["thingsboard"]["statistics"]["statsSendPeriodInSeconds"] = 10
    config["storage"]["data_folder_path"] = os.path.join(workdir, "data")
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
    os.remove(os.path.join(config_dir, "logs.json"))  # console logging for the demo
    return path


def watch(port):
    def on_message(client, userdata, msg):
        print("platform <- %-24s %s" % (msg.topic, msg.payload.decode(errors="replace")[:160]), flush=True)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="demo-platform-view")
    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: c.subscribe([("v1/gateway/#", 1), ("v1/devices/me/#", 1)])
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def main():
    seconds = float(os.environ.get("DEMO_SECONDS", "20"))
    real = bool(os.environ.get("TB_GW_HOST") and os.environ.get("TB_GW_ACCESS_TOKEN"))
    workdir = tempfile.mkdtemp(prefix="tb-gw-demo-")
    broker = viewer = None
    env = dict(os.environ, PYTHONPATH=ROOT)
    try:
        if real:
            print("Running against ThingsBoard at %s" % os.environ["TB_GW_HOST"])
            config_path = prepare_config(workdir, 1883)
        else:
            broker = Mosquitto(workdir, "demo-platform").start()
            print("Local Mosquitto standing in for ThingsBoard on 127.0.0.1:%d" % broker.port)
            config_path = prepare_config(workdir, broker.port)
            env["TB_GW_HOST"], env["TB_GW_PORT"] = "127.0.0.1", str(broker.port)
            env.setdefault("TB_GW_ACCESS_TOKEN", "DEMO_TOKEN")
            viewer = watch(broker.port)
        gateway = subprocess.Popen([sys.executable, "-m", "thingsboard_gateway", "--config", config_path], env=env)
        try:
            deadline = time.monotonic() + seconds if seconds > 0 else None
            while gateway.poll() is None and (deadline is None or time.monotonic() < deadline):
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        if gateway.poll() is None:
            gateway.send_signal(signal.SIGTERM)
        code = gateway.wait(15)
        print("Gateway exited with code %d" % code)
        return code
    finally:
        if viewer is not None:
            viewer.loop_stop()
            viewer.disconnect()
        if broker is not None:
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
