"""sd_notify datagrams reach a NOTIFY_SOCKET."""
import os
import socket

from thingsboard_gateway.gateway.systemd import SystemdNotifier


def test_notify_sends_to_the_socket(tmp_path):
    path = str(tmp_path / "notify")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    try:
        notifier = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())})
        assert notifier.notify("READY=1")
        assert server.recv(100) == b"READY=1"
        assert notifier.watchdog_interval == 10.0
    finally:
        server.close()


def test_without_systemd_nothing_happens():
    notifier = SystemdNotifier({})
    assert notifier.notify("READY=1") is False and notifier.watchdog_interval is None
