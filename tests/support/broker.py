"""A real Mosquitto broker on a free loopback port, started and stopped by tests."""
import os
import shutil
import socket
import subprocess
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10.0, up=True):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            if up:
                return True
        except OSError:
            if not up:
                return True
        time.sleep(0.05)
    return False


class Mosquitto(object):
    """mosquitto -c <conf> on 127.0.0.1:<port>. Extra config lines via `extra`."""

    def __init__(self, workdir, name="broker", port=None, extra=""):
        if shutil.which("mosquitto") is None and not os.path.exists("/usr/sbin/mosquitto"):
            raise RuntimeError("mosquitto is not installed (make test installs it with apt-get)")
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.port = port or free_port()
        self.workdir = workdir
        self.conf = os.path.join(workdir, name + ".conf")
        self.log_path = os.path.join(workdir, name + ".log")
        self.extra = extra
        self.proc = None

    def write_conf(self):
        with open(self.conf, "w") as f:
            f.write("listener %d 127.0.0.1\n" % self.port)
            if "allow_anonymous" not in self.extra:
                f.write("allow_anonymous true\n")
            f.write("persistence false\nmax_queued_messages 1000000\nmax_inflight_messages 0\n"
                    "log_dest stderr\nlog_type all\nconnection_messages true\n")
            if os.geteuid() == 0:
                f.write("user root\n")  # else it drops to `mosquitto`, who cannot read the test's files
            f.write(self.extra)

    def start(self):
        self.write_conf()
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary, "-c", self.conf], stdout=self._log_file,
                                     stderr=subprocess.STDOUT)
        if not wait_port(self.port):
            self.stop()
            raise RuntimeError("mosquitto did not start on port %d; see %s" % (self.port, self.log_path))
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if getattr(self, "_log_file", None) is not None:
            self._log_file.close()
            self._log_file = None

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""
