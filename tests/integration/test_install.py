"""`pip install .` on Python 3.7, as the README says, with Buster's pip 18.1 and with the pip
a 3.7 venv brings (22, without `wheel`): the `thingsboard-gateway` command runs on that
environment's interpreter and imports no pkg_resources (an entry point's launcher written
by these pips imports it, which scans every installed distribution at each start)."""
import glob
import os
import shutil
import subprocess

import pytest

from tests.support.gateway import ROOT

pytestmark = pytest.mark.slow


def python37():
    home = os.path.expanduser("~")
    candidates = [os.environ.get("PYTHON37")] + sorted(glob.glob(home + "/.pyenv/versions/3.7*/bin/python3.7")) + \
        ["/usr/local/bin/python3.7", "/usr/bin/python3.7"]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


PYTHON37 = python37()


def run(args, **kwargs):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=300, **kwargs)


def source_copy(folder):
    """The package as a user's clone has it, without this checkout's build/ or venvs."""
    target = os.path.join(folder, "src")
    os.makedirs(target)
    for name in ("setup.py", "README.md"):
        shutil.copy(os.path.join(ROOT, name), target)
    for name in ("bin", "thingsboard_gateway"):
        shutil.copytree(os.path.join(ROOT, name), os.path.join(target, name),
                        ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.mark.skipif(PYTHON37 is None, reason="no Python 3.7 interpreter (pyenv, /usr/bin, /usr/local/bin, PYTHON37)")
@pytest.mark.parametrize("pip", ["18.1", "as the venv brings it"])
def test_the_installed_command_imports_no_pkg_resources(tmp_path, pip):
    venv = str(tmp_path / "venv")
    assert run([PYTHON37, "-m", "venv", venv]).returncode == 0
    python, flags = os.path.join(venv, "bin", "python"), ["--quiet", "--disable-pip-version-check"]
    if pip == "18.1":
        result = run([python, "-m", "pip", "install"] + flags + ["pip==18.1"])
        assert result.returncode == 0, result.stderr[-2000:]
    # --no-deps: the command's own start-up is under test; `version` imports no dependency.
    result = run([python, "-m", "pip", "install"] + flags + ["--no-deps", source_copy(str(tmp_path))])
    assert result.returncode == 0, result.stderr[-2000:]
    command = os.path.join(venv, "bin", "thingsboard-gateway")
    with open(command) as f:
        assert f.readline().strip() in ("#!" + python, "#!" + python + "3.7")  # this environment's interpreter
    started = run([python, "-X", "importtime", command, "version"])
    assert started.returncode == 0 and started.stdout.strip()
    assert "pkg_resources" not in started.stderr
    assert run([command, "version"]).stdout == started.stdout
    assert run([python, "-m", "thingsboard_gateway", "version"], cwd=venv).stdout == started.stdout
