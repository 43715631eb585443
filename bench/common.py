"""Helpers shared by the benchmarks: ports, CPU and memory of this process, and a
stand-in for the gateway that counts what connectors send."""
import os
import resource
import socket
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


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


def cpu():
    """CPU seconds (user + system) this process used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


class CountingGateway(object):
    """What a connector sees as `gateway`, counting records and telemetry values."""

    def __init__(self):
        self.records = 0
        self.values = 0
        self.lock = threading.Lock()

    def send_to_storage(self, name, connector_id, data, on_stored=None):
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
