"""sd_notify without a dependency: READY / WATCHDOG / STOPPING datagrams to $NOTIFY_SOCKET.

Does nothing when the gateway does not run under systemd (no NOTIFY_SOCKET)."""
import os
import socket
from typing import Optional


class SystemdNotifier(object):
    def __init__(self, environ=None):
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET")
        if address and address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace
        self._address = address
        usec = environ.get("WATCHDOG_USEC")
        pid = environ.get("WATCHDOG_PID")
        self.watchdog_interval = None  # type: Optional[float]
        if usec and usec.isdigit() and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 1e6 / 2.0  # ping twice per watchdog period

    def notify(self, state):
        # type: (str) -> bool
        if not self._address:
            return False
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                sock.sendto(state.encode(), self._address)
            finally:
                sock.close()
            return True
        except OSError:
            return False
