"""The .deb: built, inspected, installed into a throw-away root with dpkg, run from the
packaged code only (system python3, no virtualenv), upgraded, removed and purged."""
import json
import os
import re
import shutil
import subprocess

import pytest

from thingsboard_gateway import __version__
from tests.support.broker import free_port
from tests.support.gateway import ROOT, simulator_entry
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("dpkg-deb") is None or shutil.which("dpkg") is None
                                or not os.path.exists("/usr/bin/python3"),
                                reason="needs dpkg, dpkg-deb and a system /usr/bin/python3 (Debian)")]
PACKAGE = "python3-thingsboard-gateway"
CLEAN_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
# A Python 3.7 environment holding only what the .deb's Depends/Recommends install on
# Raspbian Buster, at Buster's versions (debian/buster-depends.txt; built by tests/py37/envs.sh).
BUSTER_PYTHON = os.environ.get("TB_GW_TEST_BUSTER_PYTHON")
on_buster = pytest.mark.skipif(not BUSTER_PYTHON, reason="no Buster-like Python 3.7 environment (make test builds "
                                                         "one with tests/py37/envs.sh where a 3.7 interpreter exists)")
RELAYED = 3000


@pytest.fixture(scope="module")
def debs():
    built = {}
    for release in ("1", "2"):
        version = "%s-%s" % (__version__, release)
        out = subprocess.run([os.path.join(ROOT, "debian", "build-deb.sh"), version], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True, cwd=ROOT)
        assert out.returncode == 0, out.stderr[-2000:]
        built[release] = out.stdout.strip().splitlines()[-1]
    return built


def dpkg(root, *args):
    result = subprocess.run(["dpkg", "--root=" + root, "--force-depends", "--force-script-chrootless",
                             "--force-confold"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True)
    assert result.returncode == 0, result.stdout
    return result.stdout


@pytest.fixture
def root(tmp_path):
    path = str(tmp_path / "root")
    for sub in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"):
        os.makedirs(os.path.join(path, sub))
    open(os.path.join(path, "var/lib/dpkg/status"), "w").close()
    return path


def packaged(root, *args, **kwargs):
    """Run the installed /usr/bin/thingsboard-gateway with the system python3 only (or `python`)."""
    python = kwargs.pop("python", "/usr/bin/python3")
    return subprocess.run([python, os.path.join(root, "usr/bin/thingsboard-gateway")] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=CLEAN_ENV,
                          cwd=root, **kwargs)


def test_contents_metadata_and_conffiles(debs):
    listing = subprocess.run(["dpkg-deb", "-c", debs["1"]], stdout=subprocess.PIPE, universal_newlines=True).stdout
    for path in ("./usr/bin/thingsboard-gateway", "./lib/systemd/system/thingsboard-gateway.service",
                 "./etc/thingsboard-gateway/config/tb_gateway.json", "./etc/thingsboard-gateway/config/logs.json",
                 "./usr/lib/thingsboard-gateway/thingsboard_gateway/cli.py",
                 "./usr/lib/thingsboard-gateway/paho/mqtt/client.py", "./usr/lib/thingsboard-gateway/pymodbus/",
                 "./usr/lib/thingsboard-gateway/opcua/", "./usr/lib/thingsboard-gateway/extensions/simulator/",
                 "./usr/share/doc/%s/copyright" % PACKAGE,
                 # gateway_reboot: polkit lets the service user reboot, nothing else (new and Buster's polkit)
                 "./usr/share/polkit-1/rules.d/50-thingsboard-gateway-reboot.rules",
                 "./var/lib/polkit-1/localauthority/10-vendor.d/thingsboard-gateway-reboot.pkla"):
        assert path in listing, path
    assert ".so" not in listing and "__pycache__" not in listing
    assert "simplejson" not in listing  # the standard library's C json is faster (docs/DEVIATIONS.md)
    info = subprocess.run(["dpkg-deb", "-I", debs["1"]], stdout=subprocess.PIPE, universal_newlines=True).stdout
    assert "Architecture: all" in info and "Depends: python3 (>= 3.7)" in info
    conffiles = subprocess.run(["dpkg-deb", "-f", debs["1"], "Package"], stdout=subprocess.PIPE,
                               universal_newlines=True).stdout.strip()
    assert conffiles == PACKAGE
    control = subprocess.run(["dpkg-deb", "--ctrl-tarfile", debs["1"]], stdout=subprocess.PIPE).stdout
    assert b"./conffiles" in subprocess.run(["tar", "-t"], input=control, stdout=subprocess.PIPE).stdout


def test_buster_environment_holds_exactly_what_depends_and_recommends_name(debs):
    """debian/buster-depends.txt (the Buster-like test environment) follows debian/control."""
    fields = {}
    for field in ("Depends", "Recommends"):
        fields[field] = subprocess.run(["dpkg-deb", "-f", debs["1"], field], stdout=subprocess.PIPE,
                                       universal_newlines=True).stdout
    named = set(re.findall(r"\b(python3-[a-z0-9-]+)", fields["Depends"] + fields["Recommends"]))
    listed = set(re.findall(r"#\s*(python3-[a-z0-9-]+) [0-9.]+-\S+( \(for)?",
                            open(os.path.join(ROOT, "debian", "buster-depends.txt")).read()))
    assert named == {name for name, transitive in listed if not transitive}


def test_bundled_versions_match_setup_py():
    setup = open(os.path.join(ROOT, "setup.py")).read()
    pins = dict(re.findall(r'"([A-Za-z0-9_-]+)==([0-9.]+)[";]', setup))  # with or without a marker
    bundled = dict(line.strip().split("==") for line in open(os.path.join(ROOT, "debian", "bundled.txt"))
                   if line.strip())
    for name, version in bundled.items():
        assert pins.get(name) == version, name


def test_installed_package_runs_with_packaged_code_only(debs, root, broker, platform, tmp_path):
    dpkg(root, "-i", debs["1"])
    # postinst wrote byte code (the service user cannot; python-opcua's address space compiled
    # at each start peaks at 250 MB on Python 3.7)
    lib = os.path.join(root, "usr/lib/thingsboard-gateway")
    assert os.listdir(os.path.join(lib, "opcua/server/standard_address_space/__pycache__"))
    assert os.listdir(os.path.join(lib, "thingsboard_gateway/__pycache__"))
    assert packaged(root, "version").stdout.strip() == __version__
    check = packaged(root, "check", "--config", os.path.join(root, "etc/thingsboard-gateway/config/tb_gateway.json"))
    assert check.returncode == 0, check.stderr
    assert "storage:    file" in check.stdout
    assert oct(os.stat(os.path.join(root, "etc/thingsboard-gateway/config/tb_gateway.json")).st_mode & 0o777) == \
        "0o660"  # the service writes it (remote configuration); others cannot read the token
    for folder in ("var/lib/thingsboard_gateway/data", "var/lib/thingsboard_gateway/extensions",
                   "var/log/thingsboard-gateway"):
        assert os.path.isdir(os.path.join(root, folder))
    # The packaged gateway, its bundled libraries and its example extension, end to end.
    config_dir = tmp_path / "cfg"
    config_dir.mkdir()
    shutil.copy(os.path.join(root, "etc/thingsboard-gateway/config/simulator.json"), str(config_dir))
    (config_dir / "tb_gateway.json").write_text(json.dumps({
        "thingsboard": {"host": "127.0.0.1", "port": broker.port, "security": {"accessToken": "DEB"}},
        "storage": {"type": "file", "data_folder_path": str(tmp_path / "data")},
        "connectors": [simulator_entry()]}))
    process = subprocess.Popen(["/usr/bin/python3", os.path.join(root, "usr/bin/thingsboard-gateway"), "--config",
                                str(config_dir / "tb_gateway.json")], env=CLEAN_ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        platform.wait_for(lambda m: any(d == "Sim Thermometer 1" for d, _, _ in platform.telemetry()), timeout=30)
    finally:
        process.terminate()
        process.wait(15)
    assert process.returncode == 0


def test_packaged_libraries_import_with_the_debian_dependencies(debs, root):
    deps = subprocess.run(["/usr/bin/python3", "-c", "import lxml, dateutil, pytz, serial, six"], env=CLEAN_ENV)
    if deps.returncode != 0:
        pytest.skip("the Debian Depends (python3-lxml, -dateutil, -tz, -serial, -six) are not installed here")
    dpkg(root, "-i", debs["1"])
    lib = os.path.join(root, "usr/lib/thingsboard-gateway")
    code = ("import sys; sys.path.insert(0, %r); import paho.mqtt.client, pymodbus.client.sync, opcua; "
            "from thingsboard_gateway.connectors.modbus.session import make_client; print('ok')" % lib)
    result = subprocess.run(["/usr/bin/python3", "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, env=CLEAN_ENV)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]


def test_upgrade_keeps_config_edits_and_queued_data_remove_and_purge(debs, root):
    from thingsboard_gateway.storage.file import FileEventStorage
    from tests.support.records import recs
    dpkg(root, "-i", debs["1"])
    main = os.path.join(root, "etc/thingsboard-gateway/config/tb_gateway.json")
    with open(main) as f:
        config = json.load(f)
    config["thingsboard"]["host"] = "tb.example.com"
    with open(main, "w") as f:
        json.dump(config, f)
    data = os.path.join(root, "var/lib/thingsboard_gateway/data")
    storage = FileEventStorage(data)
    storage.put(recs(42))
    storage.close()

    dpkg(root, "-i", debs["2"])
    with open(main) as f:
        assert json.load(f)["thingsboard"]["host"] == "tb.example.com"
    inspect_config = os.path.join(root, "inspect.json")
    with open(inspect_config, "w") as f:
        json.dump({"thingsboard": {"host": "h", "security": {"accessToken": "t"}},
                   "storage": {"type": "file", "data_folder_path": data}}, f)
    inspect = packaged(root, "storage", "inspect", "--config", inspect_config)
    assert "records waiting: 42" in inspect.stdout, inspect.stdout + inspect.stderr

    dpkg(root, "-r", PACKAGE)
    assert os.path.exists(main) and os.path.isdir(data)
    assert not os.path.exists(os.path.join(root, "usr/bin/thingsboard-gateway"))
    assert not os.path.exists(os.path.join(root, "usr/lib/thingsboard-gateway"))  # byte code removed too
    dpkg(root, "--purge", PACKAGE)
    assert not os.path.exists(os.path.join(root, "var/lib/thingsboard_gateway"))
    assert not os.path.exists(main)


def installed_version(root):
    return subprocess.run(["dpkg-query", "--admindir=" + os.path.join(root, "var/lib/dpkg"), "-W", "-f=${Version}",
                           PACKAGE], stdout=subprocess.PIPE, universal_newlines=True).stdout


def changelog_names(root, version):
    import gzip
    with gzip.open(os.path.join(root, "usr/share/doc", PACKAGE, "changelog.Debian.gz"), "rt") as f:
        return version in f.read()


def test_update_from_thingsboard_installs_the_new_deb_and_rolls_back_to_the_old(debs, root):
    """What the update guard's default commands do on a board (debian/deb-update, run by
    systemd-run there), here with dpkg in a throw-away root: keep what is installed, install
    the new .deb, put the old one back; the configuration is never touched. (systemd-run,
    polkit and the unit's restart are not exercised here: no systemd in the test machine.)"""
    dpkg(root, "-i", debs["1"])
    main = os.path.join(root, "etc/thingsboard-gateway/config/tb_gateway.json")
    with open(main) as f:
        config = json.load(f)
    assert "deb-update install {file}" in config["thingsboard"]["softwareUpdates"]["installCommand"]
    assert not config["thingsboard"]["softwareUpdates"]["enabled"]  # opt-in
    config["thingsboard"]["host"] = "tb.example.com"
    with open(main, "w") as f:
        json.dump(config, f)
    tool = os.path.join(root, "usr/lib/thingsboard-gateway/deb-update")
    assert os.access(tool, os.X_OK)
    env = dict(CLEAN_ENV, TB_GW_DPKG_ROOT=root)
    first, second = (os.path.basename(debs[r]).split("_")[1] for r in ("1", "2"))

    done = subprocess.run([tool, "install", debs["2"]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, env=env)
    assert done.returncode == 0, done.stdout
    assert installed_version(root) == second and changelog_names(root, second)
    kept = os.path.join(root, "var/lib/thingsboard_gateway/update/previous.deb")
    assert subprocess.run(["dpkg-deb", "-f", kept, "Version"], stdout=subprocess.PIPE,
                          universal_newlines=True).stdout.strip() == first
    listing = subprocess.run(["dpkg-deb", "-c", kept], stdout=subprocess.PIPE, universal_newlines=True).stdout
    assert "./usr/lib/thingsboard-gateway/thingsboard_gateway/cli.py" in listing
    assert "tb_gateway.json" not in listing  # the configuration stays out of it
    info = subprocess.run(["dpkg-deb", "-I", kept], stdout=subprocess.PIPE, universal_newlines=True).stdout
    assert all(script in info for script in ("postinst", "prerm", "postrm")), info  # it installs as it did

    done = subprocess.run([tool, "rollback"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, env=env)
    assert done.returncode == 0, done.stdout
    assert installed_version(root) == first and changelog_names(root, first)
    with open(main) as f:
        assert json.load(f)["thingsboard"]["host"] == "tb.example.com"
    version = packaged(root, "version")
    assert version.returncode == 0 and version.stdout.strip() == __version__
    # the package manager's own upgrade later still works, and keeps the configuration
    dpkg(root, "-i", debs["2"])
    assert installed_version(root) == second
    with open(main) as f:
        assert json.load(f)["thingsboard"]["host"] == "tb.example.com"
    # nothing kept: nothing to roll back, and it says so
    os.unlink(kept)
    done = subprocess.run([tool, "rollback"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, env=env)
    assert done.returncode == 0 and "nothing to roll back" in done.stdout


def test_lintian_finds_no_errors_and_only_justified_warnings(debs):
    if shutil.which("lintian") is None:
        pytest.skip("lintian is not installed")
    result = subprocess.run(["lintian", debs["1"]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True)
    lines = [l for l in result.stdout.splitlines() if re.match(r"^[EW]: ", l)]
    assert not [l for l in lines if l.startswith("E:")], lines
    justified = open(os.path.join(ROOT, "debian", "README.source")).read()
    for line in lines:
        tag = line.split(": ")[2].split()[0]
        assert "`%s`" % tag in justified, line


def test_unit_file_verifies(debs, root):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    dpkg(root, "-i", debs["1"])
    unit = open(os.path.join(root, "lib/systemd/system/thingsboard-gateway.service")).read()
    local = os.path.join(root, "thingsboard-gateway.service")
    with open(local, "w") as f:  # point at the installed wrapper: the host has no /usr/bin/thingsboard-gateway
        f.write(unit.replace("/usr/bin/thingsboard-gateway", os.path.join(root, "usr/bin/thingsboard-gateway")))
    result = subprocess.run(["systemd-analyze", "verify", local], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True)
    problems = [l for l in result.stdout.splitlines() if "thingsboard-gateway.service" in l]
    assert not problems, result.stdout


@on_buster
def test_buster_environment_is_python37_with_busters_versions():
    code = ("import sys, six, serial, typing_extensions, lxml.etree, dateutil, pytz, cryptography; "
            "print(sys.version_info[:2], six.__version__, serial.__version__, lxml.etree.__version__, "
            "cryptography.__version__)")
    result = subprocess.run([BUSTER_PYTHON, "-c", code], stdout=subprocess.PIPE, universal_newlines=True,
                            env=CLEAN_ENV)
    assert result.stdout.split() == ["(3,", "7)", "1.12.0", "3.4", "4.3.2", "2.6.1"], result.stdout
    nothing_else = subprocess.run([BUSTER_PYTHON, "-c", "import paho"], stderr=subprocess.DEVNULL, env=CLEAN_ENV)
    assert nothing_else.returncode != 0, "the Buster-like environment must not hold the bundled libraries"


@on_buster
def test_packaged_gateway_on_buster_python37_version_and_check(debs, root):
    dpkg(root, "-i", debs["1"])
    assert packaged(root, "version", python=BUSTER_PYTHON).stdout.strip() == __version__
    check = packaged(root, "check", "--config", os.path.join(root, "etc/thingsboard-gateway/config/tb_gateway.json"),
                     python=BUSTER_PYTHON)
    assert check.returncode == 0, check.stderr
    assert "storage:    file" in check.stdout


@on_buster
def test_packaged_gateway_on_buster_python37_runs_every_connector_and_relays_without_loss(debs, root, tmp_path):
    """The .deb's own code and bundled libraries on a Buster-like 3.7: MQTT, Modbus, OPC-UA,
    serial (Buster's python3-serial 3.4), REST, SNMP (bundled puresnmp, importlib_metadata)
    and the simulator deliver, and a relay of a few thousand messages loses none."""
    from tests.support.devices import RelayPeers
    from tests.support.modbus_server import ModbusServer
    from tests.support.opcua_server import OpcUaServer
    dpkg(root, "-i", debs["1"])
    etc = os.path.join(root, "etc/thingsboard-gateway/config")
    peers = RelayPeers(str(tmp_path), ("unused/topic",))
    from tests.support.snmp_agent import SnmpAgent
    modbus, opcua, process, line, agent = None, None, None, None, None
    try:
        agent = SnmpAgent(str(tmp_path)).start()
        from tests.support.serial_line import SerialLine
        line = SerialLine()
        rest_port = free_port()
        modbus = ModbusServer("tcp")
        modbus.set("hr", 0, [215])
        opcua = OpcUaServer()
        files = {
            "simulator.json": json.load(open(os.path.join(etc, "simulator.json"))),
            "mqtt.json": {"broker": {"host": "127.0.0.1", "port": peers.devices_broker.port, "clientId": "buster-gw",
                                     "security": {"type": "anonymous"}},
                          "mapping": [{"topicFilter": "sensor/+/data", "subscriptionQos": 1, "converter": {
                              "type": "json", "deviceInfo": {"deviceNameExpressionSource": "message",
                                                             "deviceNameExpression": "${serialNumber}"},
                              "timeseries": [{"type": "integer", "key": "seq", "value": "${seq}"}]}}]},
            "modbus.json": {"master": {"slaves": [{
                "deviceName": "Buster Meter", "type": "tcp", "host": "127.0.0.1", "port": modbus.port, "unitId": 1,
                "pollPeriod": 200, "timeseries": [{"tag": "temperature", "type": "16int", "functionCode": 3,
                                                   "address": 0, "divider": 10}]}]}},
            "opcua.json": {"server": {"url": opcua.url, "timeoutInMillis": 2000, "pollPeriodInMillis": 200,
                                      "security": "None", "identity": {"type": "anonymous"}},
                           "mapping": [{"deviceNodePattern": "Root\\.Objects\\.MyObject",
                                        "deviceInfo": {"deviceNameExpressionSource": "constant",
                                                       "deviceNameExpression": "Buster Boiler"},
                                        "timeseries": [{"key": "temperature", "type": "path",
                                                        "value": "${Temperature}"}]}]},
            "serial.json": {"devices": [{"name": "Buster Serial", "port": line.gateway_port, "telemetry": [
                {"key": "humidity", "type": "float", "untilDelimiter": "\r"}]}]},
            "rest.json": {"server": {"host": "127.0.0.1", "port": rest_port}, "mapping": [{
                "endpoint": "/data", "converter": {"type": "json", "deviceInfo": {
                    "deviceNameExpressionSource": "request", "deviceNameExpression": "${name}"},
                    "timeseries": [{"type": "double", "key": "level", "value": "${level}"}]}}]},
            "snmp.json": {"devices": [{"deviceName": "Buster Switch", "ip": "127.0.0.1", "port": agent.port,
                                       "pollPeriod": 200, "timeout": 1, "telemetry": [
                                           {"key": "uptime", "method": "get", "oid": "1.3.6.1.2.1.1.3.0"}]}]}}
        for name, content in files.items():
            (tmp_path / name).write_text(json.dumps(content))
        connectors = [simulator_entry()] + [{"name": kind.upper(), "type": kind, "configuration": kind + ".json"}
                                            for kind in ("mqtt", "modbus", "opcua", "serial", "rest", "snmp")]
        (tmp_path / "tb_gateway.json").write_text(json.dumps({
            "thingsboard": {"host": "127.0.0.1", "port": peers.platform_broker.port,
                            "security": {"accessToken": "BUSTER"}},
            "storage": {"type": "file", "data_folder_path": str(tmp_path / "data")},
            "connectors": connectors}))
        out = open(str(tmp_path / "gateway.out"), "wb")
        process = subprocess.Popen([BUSTER_PYTHON, os.path.join(root, "usr/bin/thingsboard-gateway"), "--config",
                                    str(tmp_path / "tb_gateway.json")], env=CLEAN_ENV, stdout=out,
                                   stderr=subprocess.STDOUT)
        platform = peers.platform
        for device, key in (("Sim Thermometer 1", "temperature"), ("Buster Meter", "temperature"),
                            ("Buster Boiler", "temperature"), ("Buster Switch", "uptime")):
            platform.wait_for(lambda m: key in platform.latest(device), timeout=30)
        assert platform.latest("Buster Meter")["temperature"] == 21.5
        assert platform.latest("Buster Boiler")["temperature"] == 21.5
        platform.wait_topic("v1/gateway/connect", lambda b: b["device"] == "Buster Serial", timeout=30)
        line.send(b"41.5\r\n")
        platform.wait_for(lambda m: platform.latest("Buster Serial").get("humidity") == 41.5, timeout=30)
        import http.client
        connection = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=30)
        connection.request("POST", "/data", body=json.dumps({"name": "Buster Tank", "level": 3.5}))
        assert connection.getresponse().status == 200
        connection.close()
        platform.wait_for(lambda m: platform.latest("Buster Tank").get("level") == 3.5, timeout=30)

        def relayed():
            return {v["seq"] for d, v, _ in platform.telemetry() if d == "relay"}

        def subscribed():  # until the connector has subscribed (clean session: earlier ones go nowhere)
            assert process.poll() is None, open(str(tmp_path / "gateway.out")).read()[-3000:]
            peers.devices.publish("sensor/relay/data", {"serialNumber": "relay", "seq": 0})
            return 0 in relayed()
        wait_until(subscribed, 30, "the relay subscribed", interval=0.2)
        for seq in range(1, RELAYED + 1):
            peers.devices.client.publish("sensor/relay/data", json.dumps({"serialNumber": "relay", "seq": seq}),
                                         qos=1)
        platform.wait_for(lambda m: len(relayed()) == RELAYED + 1, timeout=60)
        process.terminate()
        assert process.wait(15) == 0
        log = open(str(tmp_path / "gateway.out")).read()
        assert "Traceback" not in log, log[-3000:]
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(5)
        for server in (modbus, opcua, line, agent):
            if server is not None:
                server.close() if server is line else server.stop()
        peers.close()
