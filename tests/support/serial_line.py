"""A serial line for tests: a socat pseudo-terminal pair. The gateway opens `gateway_port`;
the test plays the device on `device_port`. `unplug()` removes the pair (as a USB
adapter that vanishes), `plug()` makes it again under the same names."""
import os
import shutil
import subprocess
import time

import serial

from tests.support.broker import free_port


def pty_pair(first, second):
    """A running socat joining two pseudo-terminals linked at `first` and `second`."""
    if shutil.which("socat") is None:
        raise RuntimeError("socat is not installed")
    process = subprocess.Popen(["socat", "pty,raw,echo=0,link=" + first, "pty,raw,echo=0,link=" + second],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while not (os.path.exists(first) and os.path.exists(second)):
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("socat did not create the pty pair")
        time.sleep(0.02)
    return process


class SerialLine(object):
    def __init__(self):
        base = "/tmp/tbgw-serial-%d-%d" % (os.getpid(), free_port())
        self.device_port, self.gateway_port = base + "-dev", base + "-gw"
        self._socat = None
        self.device = None  # type: serial.Serial
        self.plug()

    def plug(self):
        self._socat = pty_pair(self.device_port, self.gateway_port)
        self.device = serial.Serial(self.device_port, 9600, timeout=0.1)

    def unplug(self):
        if self.device is not None:
            self.device.close()
            self.device = None
        if self._socat is not None:
            self._socat.terminate()
            self._socat.wait(5)
            self._socat = None
        deadline = time.monotonic() + 5
        while os.path.exists(self.gateway_port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def send(self, data):
        self.device.write(data)
        self.device.flush()

    def read_until(self, terminator=b"\n", timeout=5.0):
        """What the gateway wrote, up to and including `terminator` (b"" on timeout)."""
        deadline = time.monotonic() + timeout
        data = b""
        while time.monotonic() < deadline and not data.endswith(terminator):
            data += self.device.read(1)
        return data

    def close(self):
        self.unplug()
