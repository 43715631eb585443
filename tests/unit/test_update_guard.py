"""The update guard's steps, run as the real program (a subprocess) with small shell and
Python stand-ins for the gateway: a failed install is rolled back and the previous version
started; a trial that commits is kept, its exit code passed on; a committed gateway that
stages the next update hands it back (exit 75) to a fresh guard."""
import json
import os
import signal
import subprocess
import sys
import time

from tests.support.gateway import ROOT

# A stand-in gateway: commits the trial it finds, notes that it ran, exits with $CODE; with
# $NEXT it stages one more update (install: touch NEXT) and hands it back with exit 75.
GATEWAY = r"""
import json, os, sys, time
path = os.environ["STATE"]
state = json.load(open(path))
with open(os.environ["RUNS"], "a") as f:
    f.write("%s %s\n" % (state["state"], os.environ.get("TB_GW_UPDATE_GUARD", "-")))
if state["state"] == "trial":
    state["state"] = "committed"
    json.dump(state, open(path, "w"))
    nxt = os.environ.get("NEXT")
    if nxt and not os.path.exists(nxt):
        time.sleep(1.0)  # runs a while (the guard sees the commit), then gets the next version
        json.dump(dict(state, state="installing", version="3", install="touch " + nxt), open(path, "w"))
        sys.exit(75)
sys.exit(int(os.environ.get("CODE", "0")))
"""


def guard(tmp_path, state, env=None):
    path = str(tmp_path / "state.json")
    with open(path, "w") as f:
        json.dump(state, f)
    environment = dict(os.environ, PYTHONPATH=ROOT, STATE=path, RUNS=str(tmp_path / "runs"), **(env or {}))
    environment.pop("NOTIFY_SOCKET", None)
    done = subprocess.run([sys.executable, "-m", "thingsboard_gateway.update_guard", path, sys.executable, "-c",
                           GATEWAY], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          env=environment, cwd=str(tmp_path), timeout=60)
    with open(path) as f:
        return done, json.load(f)


def runs(tmp_path):
    with open(str(tmp_path / "runs")) as f:
        return f.read().split()


def staged(tmp_path, **changes):
    package = tmp_path / "package"
    package.write_bytes(b"new version")
    state = {"state": "installing", "title": "thingsboard-gateway", "version": "2", "previous": "1",
             "checksum": "c", "package": str(package), "install": "cp {file} installed",
             "rollback": "rm -f installed; touch rolled-back", "timeout": 10, "reported": False}
    state.update(changes)
    return state


def test_a_failed_install_is_rolled_back_and_the_previous_version_started(tmp_path):
    done, state = guard(tmp_path, staged(tmp_path, install="cp {file} installed; exit 7"))
    assert done.returncode == 0, done.stdout
    assert state["state"] == "failed" and not state["reported"]
    assert state["error"] == "installCommand exited with code 7; rolled back to 1"
    assert (tmp_path / "rolled-back").exists() and not (tmp_path / "installed").exists()
    assert not (tmp_path / "package").exists()  # nothing kept
    assert runs(tmp_path) == ["failed", "-"]  # the previous version, started by exec: no guard above it
    assert "Traceback" not in done.stdout


def test_a_trial_that_commits_is_kept_and_its_exit_code_passed_on(tmp_path):
    done, state = guard(tmp_path, staged(tmp_path), env={"CODE": "5"})
    assert done.returncode == 5, done.stdout
    assert state["state"] == "committed"
    assert (tmp_path / "installed").read_bytes() == b"new version"  # {file} was the package
    assert not (tmp_path / "rolled-back").exists()
    kind, parent = runs(tmp_path)
    assert kind == "trial" and parent.isdigit()  # a child of the guard, which it knows
    assert "connected: kept" in done.stdout


def test_a_kept_version_hands_its_own_update_to_a_fresh_guard(tmp_path):
    done, state = guard(tmp_path, staged(tmp_path), env={"NEXT": str(tmp_path / "second")})
    assert done.returncode == 0, done.stdout
    assert (tmp_path / "second").exists()  # the second install ran
    assert state["state"] == "committed" and state["version"] == "3"
    assert [r for r in runs(tmp_path) if not r.isdigit()] == ["trial", "trial"]


def test_no_rollback_command_says_so(tmp_path):
    done, state = guard(tmp_path, staged(tmp_path, install="exit 1", rollback=""))
    assert state["error"] == "installCommand exited with code 1; rollback: no rollbackCommand configured"
    assert runs(tmp_path)[0] == "failed"


# A kept version that runs until SIGTERM, notes it, and stops with code 0.
SERVING = r"""
import json, os, signal, sys, time
path = os.environ["STATE"]
state = json.load(open(path))
state["state"] = "committed"
json.dump(state, open(path, "w"))
def stop(signum, frame):
    open(os.environ["RUNS"], "a").write("stopped-by-%d\n" % signum)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
while True:
    time.sleep(0.05)
"""


def test_the_guard_passes_sigterm_to_the_kept_version_and_ends_with_it(tmp_path):
    path = str(tmp_path / "state.json")
    with open(path, "w") as f:
        json.dump(staged(tmp_path), f)
    environment = dict(os.environ, PYTHONPATH=ROOT, STATE=path, RUNS=str(tmp_path / "runs"))
    environment.pop("NOTIFY_SOCKET", None)
    guard = subprocess.Popen([sys.executable, "-m", "thingsboard_gateway.update_guard", path, sys.executable, "-c",
                              SERVING], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=environment,
                             cwd=str(tmp_path))
    try:
        deadline = time.monotonic() + 20
        while json.load(open(path)).get("state") != "committed" and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the guard sees the commit and waits on its child
        guard.send_signal(signal.SIGTERM)
        assert guard.wait(20) == 0
        assert runs(tmp_path) == ["stopped-by-%d" % signal.SIGTERM]
    finally:
        if guard.poll() is None:
            guard.kill()
        guard.stdout.close()
