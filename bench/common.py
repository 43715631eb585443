"""Helpers shared by the benchmarks: ports, CPU and memory of this process, and a
stand-in for the gateway that counts what connectors send."""
import itertools
import os
import resource
import socket
import sys
import threading
import time
from typing import Any, Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from thingsboard_gateway.connectors.connector import GatewayApi  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


PYTHON37 = os.path.join(ROOT, ".venv37", "bin", "python")


def interpreters(chosen=None):
    # type: (Any) -> List[str]
    """The interpreters a benchmark runs on: those chosen with --python, else this one and
    Python 3.7 (.venv37, which `make test` builds) when present."""
    if chosen:
        return [os.path.abspath(p) for p in chosen]  # benchmarks run them from other folders
    return [sys.executable] + ([PYTHON37] if os.path.exists(PYTHON37) else [])


def python_version(python):
    # type: (str) -> str
    """"3.7" for the interpreter at `python`."""
    import subprocess
    return subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          stdout=subprocess.PIPE, universal_newlines=True).stdout.strip() or "?"


def compiled_env(**extra):
    # type: (**str) -> Dict[str, str]
    """A benchmark child's environment: byte code written and used, as on an installed board
    (the .deb compiles it in postinst), whatever this shell's PYTHONDONTWRITEBYTECODE says."""
    env = dict(os.environ, **extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def compile_package(python):
    # type: (str) -> None
    """Compile the gateway's byte code for `python` before it is measured."""
    import subprocess
    subprocess.run([python, "-m", "compileall", "-q", os.path.join(ROOT, "thingsboard_gateway")],
                   env=compiled_env(), check=True)


def cpu():
    """CPU seconds (user + system) this process used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def status_mb(pid="self", *fields):
    # type: (Any, *str) -> Dict[str, float]
    """Memory fields of /proc/<pid>/status (VmRSS by default; VmHWM, RssAnon, ...) in MB."""
    wanted = fields or ("VmRSS",)
    figures = {}  # type: Dict[str, float]
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            key = line.split(":", 1)[0]
            if key in wanted:
                figures[key] = int(line.split()[1]) / 1024.0
    return figures


def rss_mb(pid="self"):
    # type: (Any) -> float
    """RSS of this process (or of `pid`) in MB."""
    return status_mb(pid).get("VmRSS", 0.0)


class CountingGateway(GatewayApi):
    """What a connector sees as `gateway`, counting records and telemetry values."""

    def __init__(self):
        self.records = 0
        self.values = 0
        self.lock = threading.Lock()

    def send_to_storage(self, name, connector_id, data, on_stored=None, prompt=False, delivery=True):
        n = sum(len(e["values"]) for e in data.get("telemetry") or [])
        with self.lock:
            self.records += 1
            self.values += n

    def add_device(self, *args):
        pass

    def del_device(self, *args):
        pass

    def send_rpc_reply(self, *args):
        pass

    def request_attributes(self, *args, **kwargs):
        return 0


def listener(port, client_id, subscriptions, on_message):
    # type: (int, str, Any, Any) -> Any
    """A started paho client on the local broker at `port`, subscribed to `subscriptions`
    (a topic, or [(topic, qos), ...]; a lone topic at QoS 1), calling on_message(client,
    userdata, message): the platform side of a benchmark."""
    import paho.mqtt.client as mqtt
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe(subscriptions if isinstance(subscriptions, list) else [(subscriptions, 1)])
    client.loop_start()
    return client


_QUOTAS = itertools.count()


class CpuQuota(object):
    """Confine processes to a share of one core (cgroup v2 or v1 cpu controller), as a
    slow board (a Raspberry Pi 3 is about a quarter of a core here). Needs root."""

    def __init__(self, percent):
        self.path = None
        for root, v2 in (("/sys/fs/cgroup", True), ("/sys/fs/cgroup/cpu", False)):
            # cgroup v1 mounts a tmpfs at /sys/fs/cgroup: a folder made there is no cgroup,
            # and a "cpu.max" written there limits nothing. v2 has cgroup.controllers.
            if v2 and not os.path.exists(os.path.join(root, "cgroup.controllers")):
                continue
            path = os.path.join(root, "tbgw-bench-%d-%d" % (os.getpid(), next(_QUOTAS)))
            try:
                os.mkdir(path)
                if v2:
                    with open(os.path.join(path, "cpu.max"), "w") as f:
                        f.write("%d 100000" % (percent * 1000))
                else:
                    with open(os.path.join(path, "cpu.cfs_quota_us"), "w") as f:
                        f.write(str(percent * 1000))
                self.path = path
                return
            except OSError:
                try:
                    os.rmdir(path)
                except OSError:
                    pass
        raise RuntimeError("a CPU quota needs a writable cgroup cpu controller (run as root)")

    def add(self, pid):
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(pid))

    def close(self):
        try:
            os.rmdir(self.path)
        except OSError:
            pass


def process_cpu(pid):
    # type: (int) -> float
    """CPU seconds (user + system) another process used so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


def stop_process(process, timeout=15.0):
    """SIGTERM, then SIGKILL if it did not end within `timeout` s."""
    import signal
    import subprocess
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def write_gateway_config(folder, broker_port, connector_type, file_name, connector_file):
    # type: (str, int, str, str, Any) -> str
    """tb_gateway.json for a benchmark's gateway process: the local broker, memory storage,
    no statistics, one connector (its file written beside it). Returns its path."""
    import json
    with open(os.path.join(folder, file_name), "w") as f:
        json.dump(connector_file, f)
    config = {"thingsboard": {"host": "127.0.0.1", "port": broker_port,
                              "security": {"type": "accessToken", "accessToken": "BENCH"},
                              "statistics": {"enable": False}, "sessionLimitsTimeoutMs": 0},
              "storage": {"type": "memory", "max_records_count": 1000000},
              "connectors": [{"name": connector_type, "type": connector_type, "configuration": file_name}]}
    path = os.path.join(folder, "tb_gateway.json")
    with open(path, "w") as f:
        json.dump(config, f)
    return path
