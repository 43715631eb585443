"""The board itself, for the `gateway_reboot` RPC: `systemctl reboot`, found through PATH
(as upstream finds its `shutdown`), after the answer is on its way.

Permission: root may; the .deb's service user may only through the polkit rule the
package ships (debian/polkit: org.freedesktop.login1.reboot for the user
thingsboard_gateway, nothing else). Asked before answering with `pkcheck`, so that the
answer says plainly when the board will not reboot. Tests put a stub `systemctl` (and
`pkcheck`) first in PATH; nothing here ever reboots the host they run on by itself.
"""
import logging
import os
import threading
import time
from typing import Any, Callable, Optional

log = logging.getLogger(__name__)

REBOOT_ACTION = "org.freedesktop.login1.reboot"
DELAY_SECONDS = 1.0  # the answer goes out first
COMMAND_TIMEOUT = 30.0


class Reboot(object):
    """check() -> None when a reboot may be asked for, else why not; start() runs it."""

    def __init__(self, which=None, geteuid=os.geteuid, run=None, delay=DELAY_SECONDS):
        # type: (Optional[Callable[[str], Optional[str]]], Callable[[], int], Optional[Callable[..., Any]], float) -> None
        # shutil and subprocess are imported when a reboot is asked for, not at every start
        # (shutil alone brings bz2, lzma and zlib: 4 ms of a Pi Zero's start-up at full speed).
        self._which_function = which
        self._geteuid = geteuid
        self._run_function = run
        self._delay = delay

    def _which(self, command):
        # type: (str) -> Optional[str]
        if self._which_function is None:
            import shutil
            self._which_function = shutil.which
        return self._which_function(command)

    def _run(self, *args, **kwargs):
        # type: (Any, Any) -> Any
        if self._run_function is None:
            import subprocess
            self._run_function = subprocess.run
        return self._run_function(*args, **kwargs)

    def check(self):
        # type: () -> Optional[str]
        if self._which("systemctl") is None:
            return "systemctl is not in PATH: this board is not run by systemd, reboot it by hand"
        if self._geteuid() == 0:
            return None
        pkcheck = self._which("pkcheck")
        if pkcheck is None:
            return ("the service user may not reboot the board: polkit (pkcheck) is not installed; "
                    "see the README, 'Reboot from ThingsBoard'")
        import subprocess
        try:
            done = self._run([pkcheck, "--action-id", REBOOT_ACTION, "--process", str(os.getpid())],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=COMMAND_TIMEOUT)
        except (OSError, subprocess.SubprocessError) as e:
            return "the reboot permission cannot be checked: %s" % e
        if done.returncode != 0:
            return ("the service user may not reboot the board (polkit denies %s); the .deb's rule "
                    "allows it, see the README, 'Reboot from ThingsBoard'" % REBOOT_ACTION)
        return None

    def start(self):
        """`systemctl reboot` on a thread of its own, after DELAY_SECONDS."""
        threading.Thread(target=self._reboot, name="reboot", daemon=True).start()

    def _reboot(self):
        time.sleep(self._delay)
        command = self._which("systemctl") or "systemctl"
        log.warning("Rebooting the board, as the platform asked (gateway_reboot): %s reboot", command)
        import subprocess
        try:
            done = self._run([command, "reboot"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=COMMAND_TIMEOUT)
        except (OSError, subprocess.SubprocessError) as e:
            log.error("Reboot failed: %s", e)
            return
        if done.returncode != 0:
            log.error("Reboot failed: %s reboot exited with %d: %s", command, done.returncode,
                      (done.stdout or b"").decode("utf-8", "replace").strip()[:300])
