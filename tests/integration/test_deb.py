"""The .deb: built, inspected, installed into a throw-away root with dpkg, run from the
packaged code only (system python3, no virtualenv), upgraded, removed and purged."""
import json
import os
import re
import shutil
import subprocess

import pytest

from thingsboard_gateway import __version__
from tests.support.gateway import ROOT, simulator_entry

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None or shutil.which("dpkg") is None
                                or not os.path.exists("/usr/bin/python3"),
                                reason="needs dpkg, dpkg-deb and a system /usr/bin/python3 (Debian)")
PACKAGE = "python3-thingsboard-gateway"
CLEAN_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


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
    """Run the installed /usr/bin/thingsboard-gateway with the system python3 only."""
    return subprocess.run(["/usr/bin/python3", os.path.join(root, "usr/bin/thingsboard-gateway")] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=CLEAN_ENV,
                          cwd=root, **kwargs)


def test_contents_metadata_and_conffiles(debs):
    listing = subprocess.run(["dpkg-deb", "-c", debs["1"]], stdout=subprocess.PIPE, universal_newlines=True).stdout
    for path in ("./usr/bin/thingsboard-gateway", "./lib/systemd/system/thingsboard-gateway.service",
                 "./etc/thingsboard-gateway/config/tb_gateway.json", "./etc/thingsboard-gateway/config/logs.json",
                 "./usr/lib/thingsboard-gateway/thingsboard_gateway/cli.py",
                 "./usr/lib/thingsboard-gateway/paho/mqtt/client.py", "./usr/lib/thingsboard-gateway/pymodbus/",
                 "./usr/lib/thingsboard-gateway/opcua/", "./usr/lib/thingsboard-gateway/extensions/simulator/",
                 "./usr/share/doc/%s/copyright" % PACKAGE):
        assert path in listing, path
    assert ".so" not in listing and "__pycache__" not in listing
    info = subprocess.run(["dpkg-deb", "-I", debs["1"]], stdout=subprocess.PIPE, universal_newlines=True).stdout
    assert "Architecture: all" in info and "Depends: python3 (>= 3.7)" in info
    conffiles = subprocess.run(["dpkg-deb", "-f", debs["1"], "Package"], stdout=subprocess.PIPE,
                               universal_newlines=True).stdout.strip()
    assert conffiles == PACKAGE
    control = subprocess.run(["dpkg-deb", "--ctrl-tarfile", debs["1"]], stdout=subprocess.PIPE).stdout
    assert b"./conffiles" in subprocess.run(["tar", "-t"], input=control, stdout=subprocess.PIPE).stdout


def test_bundled_versions_match_setup_py():
    setup = open(os.path.join(ROOT, "setup.py")).read()
    pins = dict(re.findall(r'"([A-Za-z0-9_-]+)==([0-9.]+)"', setup))
    bundled = dict(line.strip().split("==") for line in open(os.path.join(ROOT, "debian", "bundled.txt"))
                   if line.strip())
    for name, version in bundled.items():
        assert pins.get(name) == version, name


def test_installed_package_runs_with_packaged_code_only(debs, root, broker, platform, tmp_path):
    dpkg(root, "-i", debs["1"])
    assert packaged(root, "version").stdout.strip() == __version__
    check = packaged(root, "check", "--config", os.path.join(root, "etc/thingsboard-gateway/config/tb_gateway.json"))
    assert check.returncode == 0, check.stderr
    assert "storage:    file" in check.stdout
    assert oct(os.stat(os.path.join(root, "etc/thingsboard-gateway/config/tb_gateway.json")).st_mode & 0o777) == \
        "0o640"
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
    code = ("import sys; sys.path.insert(0, %r); import paho.mqtt.client, pymodbus.client.sync, opcua, schedule, "
            "simplejson; from thingsboard_gateway.connectors.modbus.connector import make_client; print('ok')" % lib)
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
    dpkg(root, "--purge", PACKAGE)
    assert not os.path.exists(os.path.join(root, "var/lib/thingsboard_gateway"))
    assert not os.path.exists(main)


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
