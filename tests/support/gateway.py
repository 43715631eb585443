"""Writing gateway configs and running the gateway as a real subprocess."""
import json
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The gateway under test: this checkout run by the test's own interpreter, or, with
# TB_GW_TEST_GATEWAY=/path/to/venv/bin/thingsboard-gateway, an installed gateway (`make test`
# sets it to a Python 3.7 environment holding only the package and its runtime dependencies).
INSTALLED_GATEWAY = os.environ.get("TB_GW_TEST_GATEWAY")


def gateway_command():
    """The argv prefix that starts the gateway under test."""
    if INSTALLED_GATEWAY:
        return [INSTALLED_GATEWAY]
    return [sys.executable, "-m", "thingsboard_gateway"]


def gateway_environment(env=None):
    """The environment for the gateway under test: the checkout on PYTHONPATH unless an
    installed gateway is under test (it must run from its own site-packages only)."""
    environment = dict(os.environ)
    env = dict(env or {})
    paths = [env.pop("PYTHONPATH", "")]  # the test's own folders come first
    if not INSTALLED_GATEWAY:
        paths.append(ROOT)
    paths.append(environment.get("PYTHONPATH", ""))
    environment["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    environment.update(env)
    if INSTALLED_GATEWAY:  # the checkout's example extensions (the simulator), found last as in the source tree
        folders = [environment.get("TB_GW_EXTENSIONS_DIR", ""), os.path.join(ROOT, "extensions")]
        environment["TB_GW_EXTENSIONS_DIR"] = os.pathsep.join(f for f in folders if f)
    return environment


def gateway_python():
    """The interpreter that runs the gateway under test."""
    if INSTALLED_GATEWAY:
        return os.path.join(os.path.dirname(INSTALLED_GATEWAY), "python")
    return sys.executable


def gateway_can_import(module):
    """True when the gateway's interpreter can import `module` (optional dependencies)."""
    return subprocess.run([gateway_python(), "-c", "import " + module], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, env=gateway_environment()).returncode == 0


def write_config(folder, port, connectors=(), security=None, storage=None, thingsboard=None, files=None,
                 extra=None):
    """Write tb_gateway.json (+ connector files given in `files`) into `folder`; return its path."""
    os.makedirs(folder, exist_ok=True)
    tb = {"host": "127.0.0.1", "port": port,
          "security": security or {"type": "accessToken", "accessToken": "TEST_TOKEN"},
          "statistics": {"enable": False, "statsSendPeriodInSeconds": 60},
          "reconnect": {"minDelay": 200, "maxDelay": 1000}}
    tb.update(thingsboard or {})
    config = {"thingsboard": tb,
              "storage": storage or {"type": "memory", "max_records_count": 100000,
                                     "data_folder_path": os.path.join(folder, "data")},
              "connectors": list(connectors)}
    config.update(extra or {})
    path = os.path.join(folder, "tb_gateway.json")
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
    for name, content in (files or {}).items():
        with open(os.path.join(folder, name), "w") as f:
            json.dump(content, f, indent=2) if not isinstance(content, str) else f.write(content)
    return path


def simulator_entry(name="Simulator", configuration="simulator.json"):
    return {"name": name, "type": "simulator", "class": "SimulatorConnector", "configuration": configuration}


class GatewayProcess(object):
    """`python -m thingsboard_gateway --config PATH` with output captured to a file."""

    def __init__(self, config_path, env=None, args=None, cwd=ROOT):
        self.config_path = config_path
        self.log_path = os.path.join(os.path.dirname(config_path), "gateway.out")
        self.out = open(self.log_path, "ab")
        self.proc = subprocess.Popen(gateway_command() + (args or ["--config", config_path]), stdout=self.out,
                                     stderr=subprocess.STDOUT, env=gateway_environment(env), cwd=cwd)

    def output(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def terminate(self, timeout=15.0):
        """SIGTERM; returns (exit code, seconds it took)."""
        start = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(5)
        return code, time.monotonic() - start

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.out.close()


def run_cli(args, env=None, timeout=60):
    """Run the CLI to completion; returns CompletedProcess with text output."""
    return subprocess.run(gateway_command() + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=gateway_environment(env), timeout=timeout, cwd=ROOT)
