"""Debian's net-snmp agent (snmpd) for tests: on a free UDP port of 127.0.0.1 with its own
config, state folder and log (nothing of the host's /etc/snmp or /var/lib/snmp), run as
nobody when the tests run as root. `snmpget`/`snmpset`/`snmpwalk` are the reference."""
import os
import shutil
import signal
import socket
import subprocess
import time

PUBLIC, PRIVATE = "public", "private"


def have_snmpd():
    return shutil.which("snmpd") is not None and shutil.which("snmpget") is not None


def free_udp_port():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class SnmpAgent(object):
    """start(), stop() (and start() again on the same port), close()."""

    def __init__(self, folder, name="agent", port=None):
        self.folder = os.path.join(folder, "snmpd-" + name)
        os.makedirs(self.folder, exist_ok=True)
        os.chmod(self.folder, 0o777)  # its state files, written by nobody
        self.port = port or free_udp_port()
        self.config = os.path.join(self.folder, "snmpd.conf")
        with open(self.config, "w") as f:
            f.write("agentAddress udp:127.0.0.1:%d\n" % self.port)
            f.write("rocommunity %s 127.0.0.1\nrwcommunity %s 127.0.0.1\n" % (PUBLIC, PRIVATE))
            f.write("sysLocation test bench\n")  # sysContact and sysName stay writable
        self.log = os.path.join(self.folder, "snmpd.log")
        self.proc = None

    def env(self):
        return dict(os.environ, SNMP_PERSISTENT_DIR=self.folder, MIBS="", MIBDIRS=self.folder)

    def start(self):
        args = ["snmpd", "-f", "-C", "-c", self.config, "-Lf", self.log, "-p", os.path.join(self.folder, "pid")]
        if os.geteuid() == 0:
            args += ["-u", "nobody", "-g", "nogroup"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.get("1.3.6.1.2.1.1.3.0", timeout=0.3) is not None:
                return self
            if self.proc.poll() is not None:
                break
        raise RuntimeError("snmpd did not answer on port %d: %s" % (self.port, self.read_log()[-500:]))

    def read_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _tool(self, tool, community, *args, **kwargs):
        timeout = kwargs.get("timeout", 2)
        command = [tool, "-v2c", "-c", community, "-On", "-Oe", "-t", str(timeout), "-r", "0",
                   "127.0.0.1:%d" % self.port] + list(args)
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                              env=self.env(), timeout=timeout + 10)
        return done.stdout if done.returncode == 0 else None

    def get(self, oid, timeout=2):
        """snmpget's value text (after the type), or None."""
        out = self._tool("snmpget", PUBLIC, oid, timeout=timeout)
        if not out or "No Such" in out:
            return None
        return out.split(" = ", 1)[1].split(": ", 1)[-1].strip()

    def walk(self, oid):
        """[(oid, value text)] by snmpwalk."""
        out = self._tool("snmpwalk", PUBLIC, oid) or ""
        rows = []
        for line in out.splitlines():
            if " = " in line:
                found, rest = line.split(" = ", 1)
                rows.append((found.lstrip("."), rest.split(": ", 1)[-1].strip()))
        return rows

    def set(self, oid, kind, value):
        return self._tool("snmpset", PRIVATE, oid, kind, value)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    close = stop
