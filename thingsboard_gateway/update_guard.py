"""The update guard: `python -m thingsboard_gateway.update_guard STATE GATEWAY-COMMAND...`.

A gateway that has verified a package from ThingsBoard stops in order (connectors stopped,
storage flushed) and replaces itself (exec, same PID: systemd's main process, a test's
child) with this guard, whose code is in memory before anything is installed. The guard:

1. runs `installCommand` with the package's path for {file} (a failure: step 4);
2. runs the gateway command (now the new version) as its child, the state `trial`;
3. waits until that child writes `committed` (it has connected to the platform) and then
   stays its parent: it passes SIGTERM/SIGINT/SIGHUP on and exits with the child's code;
4. when the child exits before that, or `confirmTimeoutSeconds` pass: stops it, runs
   `rollbackCommand`, writes `failed` with the reason and becomes the previous version
   again (exec), which reports FAILED to ThingsBoard and never tries that version again.

A committed child that stages the next update exits with EXIT_UPDATE; the guard then starts
afresh from the code now installed. A gateway that starts and finds a `trial` state without
a guard above it (a reboot during the trial) starts the guard for the rest of the trial.
Under systemd the guard feeds the watchdog while it installs and waits; the unit needs
NotifyAccess=all, since the child is not the main process. Standard library only.
"""
import os
import shlex
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

from thingsboard_gateway.gateway.systemd import SystemdNotifier
from thingsboard_gateway.config import update_state

INSTALL_TIMEOUT = 1800.0  # dpkg on an SD card: minutes at worst
STOP_TIMEOUT = 20.0
POLL = 0.2


def say(text):
    # type: (str) -> None
    sys.stderr.write("%s update guard: %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"), text))
    sys.stderr.flush()


class Guard(object):
    def __init__(self, path, command):
        # type: (str, List[str]) -> None
        self.path = path
        self.command = command
        self.state = update_state.read(path)
        self.notifier = SystemdNotifier()
        self.child = None  # type: Optional[subprocess.Popen]
        self.stopping = False
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum, frame):
        if signum != signal.SIGHUP:
            self.stopping = True
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)

    def _save(self, **changes):
        # type: (**Any) -> None
        self.state.update(changes)
        try:
            update_state.write(self.path, self.state)
        except OSError as e:
            say("cannot write %s: %s" % (self.path, e))

    def _shell(self, what, command, timeout):
        # type: (str, str, float) -> Optional[str]
        """Run a local command (sh -c), feeding the watchdog; None when it succeeded, else why not."""
        say("running %s: %s" % (what, command))
        try:
            process = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL)
        except OSError as e:
            return "%s could not start: %s" % (what, e)
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            self.notifier.notify("WATCHDOG=1")
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                return "%s did not finish within %d s" % (what, timeout)
            time.sleep(POLL)
        return None if process.returncode == 0 else "%s exited with code %d" % (what, process.returncode)

    # -- the steps ------------------------------------------------------------------------------
    def run(self):
        # type: () -> int
        kind = self.state.get("state")
        if kind == update_state.INSTALLING:
            self.notifier.notify("STATUS=installing %s" % self.state.get("version"))
            package = str(self.state.get("package") or "")
            problem = self._shell("installCommand", str(self.state.get("install") or "").replace(
                "{file}", shlex.quote(package)), INSTALL_TIMEOUT)
            update_state.remove(package)
            if problem is not None:
                return self._roll_back(problem)
            self._save(state=update_state.TRIAL)
        elif kind != update_state.TRIAL:
            return self._become_gateway()
        if self.stopping:  # stopped while installing: the trial goes on at the next start
            return 0
        return self._trial()

    def _start_child(self):
        environment = dict(os.environ)
        environment[update_state.GUARD_ENV] = str(os.getpid())
        environment.pop("WATCHDOG_PID", None)  # the child feeds systemd's watchdog itself
        self.child = subprocess.Popen(self.command, env=environment)

    def _trial(self):
        # type: () -> int
        timeout = float(self.state.get("timeout") or 120)
        say("running %s %s as a trial: kept once it connects to the platform within %d s"
            % (self.state.get("title"), self.state.get("version"), timeout))
        self.notifier.notify("STATUS=trial of %s" % self.state.get("version"))
        try:
            self._start_child()
        except OSError as e:
            return self._roll_back("the new version could not start: %s" % e)
        deadline = time.monotonic() + timeout
        while True:
            code = self.child.poll()
            if update_state.read(self.path).get("state") == update_state.COMMITTED:
                say("%s %s connected: kept" % (self.state.get("title"), self.state.get("version")))
                return self._parent()
            if code is not None:
                if self.stopping:
                    return _exit_code(code)  # stopped during the trial: it goes on at the next start
                return self._roll_back("the new version exited with code %d before it connected to the platform"
                                       % code)
            if time.monotonic() > deadline:
                running = update_state.read(self.path).get("running")
                return self._roll_back("the new version did not connect to the platform within %d s%s" % (
                    timeout, " (the version installed says it is %s)" % running if running else ""))
            self.notifier.notify("WATCHDOG=1")
            time.sleep(POLL)

    def _parent(self):
        # type: () -> int
        """The kept version runs: pass signals on, end with it."""
        code = self.child.wait()  # (signals interrupt nothing here: PEP 475 retries the wait)
        if code == update_state.EXIT_UPDATE and not self.stopping:
            self._become_guard()
        return _exit_code(code)

    def _roll_back(self, reason):
        # type: (str) -> int
        say("update to %s failed: %s" % (self.state.get("version"), reason))
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()
            try:
                self.child.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()
        self.notifier.notify("STATUS=rolling back")
        rollback = str(self.state.get("rollback") or "")
        problem = self._shell("rollbackCommand", rollback, INSTALL_TIMEOUT) if rollback else \
            "no rollbackCommand configured"
        if problem is not None:
            say("rollback: %s" % problem)
            reason += "; rollback: %s" % problem
        else:
            reason += "; rolled back to %s" % self.state.get("previous")
        self._save(state=update_state.FAILED, error=reason, reported=False)
        if self.stopping:
            return 1
        return self._become_gateway()

    def _become_gateway(self):
        # type: () -> int
        say("starting %s" % " ".join(self.command))
        sys.stderr.flush()
        os.execv(self.command[0], self.command)
        return 1  # pragma: no cover

    def _become_guard(self):
        os.execv(sys.executable, guard_command(self.path, self.command))


def guard_command(path, command):
    # type: (str, List[str]) -> List[str]
    return [sys.executable, "-m", "thingsboard_gateway.update_guard", path] + list(command)


def guard_environment():
    # type: () -> Dict[str, str]
    """The environment in which `-m thingsboard_gateway.update_guard` finds this package."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    environment = dict(os.environ)
    paths = [p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p]
    if here not in paths:
        environment["PYTHONPATH"] = os.pathsep.join([here] + paths)
    return environment


def _exit_code(code):
    # type: (int) -> int
    return 128 - code if code < 0 else code


def main(argv=None):
    # type: (Optional[List[str]]) -> int
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2:
        sys.stderr.write("usage: python -m thingsboard_gateway.update_guard STATE GATEWAY-COMMAND...\n")
        return 2
    return Guard(argv[0], argv[1:]).run()


if __name__ == "__main__":
    sys.exit(main())
