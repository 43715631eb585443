"""What a gateway holds resident that it does not use (issue 26, memory after work): the
modules it imports for a configuration that does not need them, and the malloc arenas
its threads would each keep after a burst. Each check runs in a fresh interpreter."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GLIBC = sys.platform.startswith("linux") and bool(os.confstr("CS_GNU_LIBC_VERSION")
                                                  if "CS_GNU_LIBC_VERSION" in os.confstr_names else "")


def run_python(code, env=None):
    environment = dict(os.environ, PYTHONPATH=ROOT)
    environment.pop("MALLOC_ARENA_MAX", None)
    environment.update(env or {})
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, env=environment, timeout=60)
    assert result.returncode == 0, result.stderr
    return result


def mqtt_only_config(folder):
    with open(os.path.join(str(folder), "mqtt.json"), "w") as f:
        json.dump({"broker": {"host": "127.0.0.1", "port": 1883, "security": {"type": "anonymous"}},
                   "mapping": [{"topicFilter": "sensor/+/data", "converter": {
                       "type": "json", "deviceNameJsonExpression": "${serialNumber}",
                       "timeseries": [{"type": "double", "key": "t", "value": "${t}"}]}}]}, f)
    path = os.path.join(str(folder), "tb_gateway.json")
    with open(path, "w") as f:
        json.dump({"thingsboard": {"host": "127.0.0.1", "port": 1883,
                                   "security": {"type": "accessToken", "accessToken": "T"}},
                   "storage": {"type": "memory"},
                   "connectors": [{"type": "mqtt", "name": "M", "configuration": "mqtt.json"}]}, f)
    return path


def test_an_mqtt_gateway_without_logs_json_imports_nothing_it_does_not_use(tmp_path):
    path = mqtt_only_config(tmp_path)
    result = run_python("""
        import sys
        from thingsboard_gateway.cli import validate_connector_files
        from thingsboard_gateway.config.loader import load_gateway_config
        from thingsboard_gateway.config.logs import setup_logging
        from thingsboard_gateway.gateway.service import GatewayService
        config = validate_connector_files(load_gateway_config(%r))
        setup_logging(config.folder)
        service = GatewayService(config)
        service.connectors.start_all()
        service.connectors.stop_all()
        print(" ".join(sorted(sys.modules)))
    """ % path)
    modules = set(result.stdout.split())
    assert "thingsboard_gateway.connectors.mqtt.connector" in modules  # it did load the connector
    unused = {"logging.config", "logging.handlers", "socketserver", "opcua", "bluepy", "pymodbus", "serial",
              "http.server", "sqlite3"}
    assert not unused & modules


def test_a_logs_json_still_gets_the_rotating_handler(tmp_path):
    (tmp_path / "logs.json").write_text(json.dumps({
        "version": 1, "handlers": {"file": {
            "class": "thingsboard_gateway.tb_utility.tb_rotating_file_handler.TimedRotatingFileHandler",
            "filename": str(tmp_path / "logs" / "gateway.log"), "backupCount": 1, "maxBytes": 100}},
        "root": {"level": "INFO", "handlers": ["file"]}}))
    result = run_python("""
        import logging
        from thingsboard_gateway.config.logs import setup_logging
        setup_logging(%r)
        print(type(logging.getLogger().handlers[0]).__name__)
    """ % str(tmp_path))
    assert result.stdout.strip() == "TimedRotatingLogHandler"
    assert (tmp_path / "logs" / "gateway.log").exists()


ARENAS = """
    import ctypes, sys, threading
    from thingsboard_gateway.runtime import allocator
    print(allocator.share_one_arena())
    def work():
        for _ in range(3000):
            [b"x" * 2000 for _ in range(20)]
    threads = [threading.Thread(target=work) for _ in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    print(allocator.trim())
    ctypes.CDLL(None).malloc_stats()
"""


@pytest.mark.skipif(not GLIBC, reason="malloc arenas are glibc's")
def test_threads_share_one_malloc_arena():
    result = run_python(ARENAS)
    assert result.stdout.split()[0] == "True"
    assert result.stderr.count("Arena ") == 1, result.stderr


@pytest.mark.skipif(not GLIBC, reason="malloc arenas are glibc's")
def test_malloc_arena_max_in_the_environment_wins():
    result = run_python(ARENAS, {"MALLOC_ARENA_MAX": "2"})
    assert result.stdout.split()[0] == "False"
    assert result.stderr.count("Arena ") == 2, result.stderr


def test_the_start_path_leaves_out_what_paho_and_rare_features_would_import(tmp_path):
    """Issue 36: what the CLI's start skips (runtime/lean_start.py) and what few
    configurations need stays unimported until used, up to the connectors running."""
    path = mqtt_only_config(tmp_path)
    result = run_python("""
        import sys
        from thingsboard_gateway.runtime import lean_start
        lean_start.prepare()
        from thingsboard_gateway.cli import validate_connector_files
        from thingsboard_gateway.config.loader import load_gateway_config
        from thingsboard_gateway.config.logs import setup_logging
        from thingsboard_gateway.gateway.service import GatewayService
        config = validate_connector_files(load_gateway_config(%r))
        setup_logging(config.folder)
        service = GatewayService(config)
        loaded = lambda: " ".join(sorted(m for m in sys.modules if type(sys.modules[m]).__name__ == "module"))
        print(loaded())
        service.connectors.start_all()
        service.connectors.stop_all()
        print(loaded())
    """ % path, env={"MALLOC_ARENA_MAX": "1"})
    built, ran = (set(line.split()) for line in result.stdout.splitlines())
    assert "paho.mqtt.client" in ran and "thingsboard_gateway.connectors.mqtt.connector" in ran
    unused = {"urllib.request", "http.client", "email.parser", "tempfile", "datetime", "concurrent.futures",
              "ctypes", "thingsboard_gateway.runtime.checksums"}
    assert not unused & ran, unused & ran
    assert "random" not in built  # (the connector's failed connect then draws its backoff's jitter)
