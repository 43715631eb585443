"""Updates from ThingsBoard's software OTA, end to end: the assignment, the download by chunks
(resumed after a reconnect), the verification, the install by the update guard, the trial
that is kept once the new version connects, and the rollback of a version that crashes at
start or never connects. Real brokers, the MQTT connector with a device publishing
throughout (nothing may be lost), file storage, and a platform double serving the OTA
protocol. The gateway runs from a folder of its own (app/current, first on PYTHONPATH) that
the install and rollback commands swap, as a package manager would."""
import hashlib
import io
import json
import os
import shutil
import tarfile
import time

import pytest

from tests.support.devices import PacedPublisher, RelayPeers, seq_connector_file
from tests.support.gateway import GatewayProcess, ROOT, write_config
from tests.support.platform import PlatformDouble
from tests.support.proxy import MqttProxy
from tests.support.waiting import wait_until

TITLE = "thingsboard-gateway"
INSTALL = "set -e; cd %(app)s; rm -rf new previous; mkdir new; tar -xzf {file} -C new; mv current previous; " \
          "mv new current"
ROLLBACK = "set -e; cd %(app)s; rm -rf current; mv previous current"


def our_version():
    from thingsboard_gateway import __version__
    return __version__


def copy_package(target):
    shutil.copytree(os.path.join(ROOT, "thingsboard_gateway"), os.path.join(target, "thingsboard_gateway"),
                    ignore=shutil.ignore_patterns("__pycache__"))


def package(version, change=None):
    """A .tar.gz of this checkout's thingsboard_gateway with __version__ = version; change:
    {relative path: (old text, new text)} applied exactly once each, or appended text."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        base = os.path.join(ROOT, "thingsboard_gateway")
        edits = dict(change or {})
        edits.setdefault("__init__.py", None)
        for folder, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                path = os.path.join(folder, name)
                relative = os.path.relpath(path, base)
                with open(path, "rb") as f:
                    content = f.read()
                if relative in edits:
                    text = content.decode()
                    if relative == "__init__.py":
                        assert text.count('__version__ = "%s"' % our_version()) == 1
                        text = text.replace('__version__ = "%s"' % our_version(), '__version__ = "%s"' % version)
                    edit = edits[relative]
                    if isinstance(edit, tuple):
                        assert text.count(edit[0]) == 1, (relative, edit[0])  # the variant is what it says
                        text = text.replace(*edit)
                    elif edit:
                        text += edit
                    content = text.encode()
                info = tarfile.TarInfo(os.path.join("thingsboard_gateway", relative))
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content))
    return data.getvalue()


@pytest.fixture(scope="module")
def peers(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("ota"))
    peers = RelayPeers(folder, ("sensor/+/request/#",))
    proxy = MqttProxy(peers.platform_broker.port)
    try:
        yield peers, proxy
    finally:
        proxy.close()
        peers.close()


class World(object):
    def __init__(self, peers, proxy, folder, install=True, timeout=30):
        self.peers, self.proxy, self.folder = peers, proxy, folder
        peers.platform.close()
        self.platform = peers.platform = PlatformDouble(peers.platform_broker.port)  # nothing from earlier tests
        self.app = os.path.join(folder, "app")
        copy_package(os.path.join(self.app, "current"))
        updates = {"enabled": True, "title": TITLE, "chunkSize": 65536, "confirmTimeoutSeconds": timeout}
        if install:
            updates.update(installCommand=INSTALL % {"app": self.app}, rollbackCommand=ROLLBACK % {"app": self.app})
        self.device = "OTA-%d" % (id(self) % 100000)
        path = write_config(folder, proxy.port, connectors=[{"name": "Field", "type": "mqtt",
                                                             "configuration": "mqtt.json"}],
                            files={"mqtt.json": seq_connector_file(peers.devices_broker.port, self.device)},
                            storage={"type": "file", "data_folder_path": os.path.join(folder, "data")},
                            thingsboard={"softwareUpdates": updates, "remoteConfiguration": True})
        # run from the folder (python -m puts the working folder first on sys.path)
        self.gateway = GatewayProcess(path, env={"PYTHONPATH": os.path.join(self.app, "current")}, cwd=folder)
        self.publisher = None
        wait_until(lambda: self.running_versions(), 30, "the gateway reporting what runs")
        wait_until(lambda: any("sw_version" in (keys or "") for keys in self.platform.own_requests()), 10,
                   "the request for the assignment")

    def publish(self, rate=50):
        self.publisher = PacedPublisher(self.peers.devices.client, rate, device=self.device)

    def running_versions(self):
        return [b["values"]["current_sw_version"] for b in self.platform.on("v1/devices/me/telemetry")
                if isinstance(b, dict) and "current_sw_version" in b.get("values", {})]

    def states(self):
        """The sw_state sequence, a repeat in a row counted once: a state published just
        before a reconnect may arrive twice (at least once, as the platform gets it)."""
        out = []
        for state, _ in self.platform.sw_states():
            if not out or out[-1] != state:
                out.append(state)
        return out

    def installed_version(self):
        with open(os.path.join(self.app, "current", "thingsboard_gateway", "__init__.py")) as f:
            return next(line.split('"')[1] for line in f if line.startswith("__version__"))

    def all_delivered(self):
        """Stop the device and wait until every message it sent reached the platform."""
        self.publisher.stop()
        sent = self.publisher.sent
        wait_until(lambda: set(range(1, sent + 1)) <= set(self.seqs()), 60, "all %d messages delivered" % sent)
        return sent

    def seqs(self):
        return [v["seq"] for d, v, _ in self.platform.telemetry() if d == self.device and "seq" in v]

    def close(self):
        if self.publisher is not None:
            self.publisher.stop()
        self.gateway.kill()


@pytest.fixture
def world(peers, tmp_path):
    made = []

    def make(**options):
        made.append(World(peers[0], peers[1], str(tmp_path), **options))
        return made[-1]
    yield make
    for w in made:
        w.close()


def test_a_good_package_is_installed_kept_and_not_downloaded_again(world):
    w = world()
    assert w.running_versions()[0] == our_version()
    pid = w.gateway.proc.pid
    w.publish()
    new = our_version() + ".1"
    data = package(new)
    w.platform.serve_software(TITLE, new, data)
    wait_until(lambda: "UPDATED" in w.states() or "FAILED" in w.states(), 60, "the update's end")
    assert w.states() == ["DOWNLOADING", "DOWNLOADED", "VERIFIED", "UPDATING", "UPDATED"], w.platform.sw_states()
    assert w.running_versions()[-1] == new and w.installed_version() == new
    chunks = len(w.platform.chunk_requests)
    assert sorted(n for _, n, _ in w.platform.chunk_requests) == list(range(chunks))  # each chunk once
    assert w.gateway.proc.pid == pid and w.gateway.proc.poll() is None  # the same process for its supervisor
    state = json.load(open(os.path.join(w.folder, "data", "update", "state.json")))
    assert state["state"] == "committed" and state["previous"] == our_version()
    assert not os.path.exists(state["package"])  # installed: not kept
    # the same assignment again (and the platform's answers after each connect): nothing downloaded
    w.platform.serve_software(TITLE, new, data)
    time.sleep(1.0)
    assert len(w.platform.chunk_requests) == chunks and w.states()[-1] == "UPDATED"
    w.all_delivered()
    # the kept version runs as the guard's child; a guard killed outright (SIGKILL, no
    # cgroup to take the child along) does not leave it running: it stops in order
    child = children_of(pid)
    assert len(child) == 1
    w.gateway.proc.kill()
    wait_until(lambda: not os.path.exists("/proc/%d" % child[0]) or "zombie" in open(
        "/proc/%d/status" % child[0]).read(), 15, "the orphaned new version stopping")
    after = w.gateway.output().split("connected: kept")[-1]
    assert "The update guard (pid %d) is gone: stopping" % pid in after and "Stopped" in after
    assert "Traceback" not in w.gateway.output()


def children_of(pid):
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return [int(p) for p in f.read().split()]


@pytest.mark.parametrize("variant", ["crashes at start", "never connects"])
def test_a_version_that_is_not_healthy_is_rolled_back_and_not_tried_again(world, variant):
    if variant == "crashes at start":
        w = world()
        change = {"__init__.py": "import sys as _sys\n_sys.stderr.write('crashing at start\\n')\n_sys.exit(3)\n"}
        reason = "exited with code 3 before it connected"
    else:
        w = world(timeout=5)
        change = {"platform/client.py": ('platform_client(thingsboard["security"]), thingsboard["host"], '
                                         'thingsboard["port"],',
                                         'platform_client(thingsboard["security"]), thingsboard["host"], 1,')}
        reason = "did not connect to the platform within 5 s"
    w.publish()
    bad = our_version() + ".66"
    data = package(bad, change)
    w.platform.serve_software(TITLE, bad, data)
    wait_until(lambda: "FAILED" in w.states(), 90, "the rollback")
    assert w.states() == ["DOWNLOADING", "DOWNLOADED", "VERIFIED", "UPDATING", "FAILED"], w.platform.sw_states()
    error = w.platform.sw_states()[-1][1]
    assert reason in error and "rolled back to %s" % our_version() in error, error
    assert w.installed_version() == our_version()
    wait_until(lambda: w.running_versions()[-1] == our_version() and len(w.running_versions()) >= 2, 10,
               "the previous version reporting itself")
    # re-assigned: FAILED once, then it waits for a different version (also after its own restart)
    chunks = len(w.platform.chunk_requests)
    w.platform.serve_software(TITLE, bad, data)
    time.sleep(1.0)
    assert len(w.platform.chunk_requests) == chunks and [s for s, _ in w.platform.sw_states()].count("FAILED") == 1
    w.all_delivered()
    assert w.gateway.output().count("Traceback") == 0


def test_a_corrupted_package_and_a_wrong_title_fail_and_nothing_is_installed(world):
    w = world()
    w.platform.serve_software(TITLE, "9.9.8", package("9.9.8"), checksum="00" * 32)
    wait_until(lambda: "FAILED" in w.states(), 30, "the checksum's verdict")
    assert "checksum mismatch" in w.platform.sw_states()[-1][1]
    assert "VERIFIED" not in w.states() and w.installed_version() == our_version()
    update = os.path.join(w.folder, "data", "update")
    assert not os.path.isdir(update) or not os.listdir(update)  # nothing staged
    assert not os.path.exists(os.path.join(w.folder, "data", "software-update.part"))
    # the platform's {"deleted": ["sw_url"]} of the assignment is not a connector deletion
    assert not w.platform.latest_client("remoteConfigurationErrors")
    requests = len(w.platform.chunk_requests)
    w.platform.serve_software("other-firmware", "1.0", b"x" * 100)
    wait_until(lambda: "is not this gateway's" in (w.platform.sw_states()[-1][1] or ""), 20, "the title's verdict")
    assert len(w.platform.chunk_requests) == requests  # nothing downloaded


def test_a_download_resumes_after_a_reconnect_while_device_data_flows(world):
    w = world(install=False)
    w.publish()
    data = os.urandom(40000)
    w.platform.hold_chunks.set()  # the first request is noted, not answered
    w.platform.serve_software(TITLE, "9.9.7", data, algorithm="MD5", checksum=hashlib.md5(data).hexdigest())
    wait_until(lambda: w.platform.chunk_requests, 20, "the first chunk request")
    lost = w.gateway.output().count("connection lost")
    w.proxy.cut()
    wait_until(lambda: w.gateway.output().count("connection lost") > lost, 10, "the gateway noticed")
    w.platform.hold_chunks.clear()
    w.proxy.restore()
    wait_until(lambda: "FAILED" in w.states(), 40, "the resumed download")
    assert w.states() == ["DOWNLOADING", "DOWNLOADED", "VERIFIED", "FAILED"]
    assert "no softwareUpdates.installCommand" in w.platform.sw_states()[-1][1]  # verified, nothing to install with
    assert [n for _, n, _ in w.platform.chunk_requests].count(0) == 2  # chunk 0 asked again, not the rest
    values = w.seqs()
    assert values == sorted(values)
    w.all_delivered()


def test_install_and_rollback_commands_come_only_from_local_files(world):
    w = world()
    with open(os.path.join(w.folder, "tb_gateway.json")) as f:
        thingsboard = json.load(f)["thingsboard"]
    thingsboard["softwareUpdates"] = dict(thingsboard["softwareUpdates"], installCommand="rm -rf / # {file}")
    w.platform.push_shared({"general_configuration": thingsboard})
    wait_until(lambda: w.platform.latest_client("remoteConfigurationErrors"), 20, "the refusal")
    assert "come only from local files" in w.platform.latest_client("remoteConfigurationErrors")[
        "general_configuration"]
    with open(os.path.join(w.folder, "tb_gateway.json")) as f:
        assert json.load(f)["thingsboard"]["softwareUpdates"]["installCommand"] == INSTALL % {"app": w.app}
    # gateway_update (the service RPC button) says what runs and that ThingsBoard may update it
    answer = w.platform.service_rpc("update")
    text = json.dumps(answer)
    assert our_version() in text and "updates_from_thingsboard" in text
