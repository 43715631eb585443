"""Configuration loading: every case folder under tests/cases/config, env overrides, CLI lines."""
import json
import os

import pytest

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.loader import default_config_path
from thingsboard_gateway.config.loader import load_gateway_config as load_main_file
from thingsboard_gateway.connectors.registry import validate_connector_files
from tests.support.gateway import run_cli

def load_gateway_config(path, env=None):
    """What `check` and start-up load: the main file, then each connector's own checks."""
    return validate_connector_files(load_main_file(path, env=env))


CASES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "cases", "config")


def case_names():
    return sorted(os.listdir(CASES))


@pytest.mark.parametrize("case", case_names())
def test_config_case(case):
    folder = os.path.join(CASES, case)
    with open(os.path.join(folder, "expected.txt")) as f:
        expected = f.read().strip().replace("{dir}", os.path.realpath(folder))
    path = os.path.join(folder, "tb_gateway.json")
    if expected == "ok":
        config = load_gateway_config(path, env={})
        assert config.warnings == []
        return
    with pytest.raises(ConfigError) as info:
        load_gateway_config(path, env={})
    assert str(info.value) == expected


def test_bad_port_prints_one_line_and_exits_2():
    result = run_cli(["check", "--config", os.path.join(CASES, "port_not_integer", "tb_gateway.json")])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'error: tb_gateway.json: thingsboard.port: expected an integer 1-65535, got "abc"']
    assert "Traceback" not in result.stderr + result.stdout


def test_run_with_bad_config_exits_2_without_traceback():
    result = run_cli(["--config", os.path.join(CASES, "invalid_json", "tb_gateway.json")])
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "line 4 column 3" in result.stderr


def _write(tmp_path, content, name="tb_gateway.json"):
    path = tmp_path / name
    path.write_text(json.dumps(content))
    return str(path)


def minimal(**tb):
    config = {"thingsboard": {"host": "h", "security": {"type": "accessToken", "accessToken": "TOKEN"}}}
    config["thingsboard"].update(tb)
    return config


def test_defaults_are_filled(tmp_path):
    config = load_gateway_config(_write(tmp_path, minimal()), env={})
    assert config.thingsboard["port"] == 1883
    assert config.thingsboard["qos"] == 1
    assert config.thingsboard["reconnect"] == {"enabled": True, "minDelay": 1000, "maxDelay": 60000,
                                               "backoffMultiplier": 2, "jitter": 0.2}
    assert config.storage["type"] == "memory"
    assert config.supervision["maxFailures"] == 5


def test_env_overrides_host_port_token_and_rate_limits(tmp_path):
    env = {"TB_GW_HOST": "tb.local", "TB_GW_PORT": "8883", "TB_GW_ACCESS_TOKEN": "ENV_TOKEN",
           "TB_GW_RATE_LIMITS": "10:1,100:60"}
    config = load_gateway_config(_write(tmp_path, minimal()), env=env)
    assert config.thingsboard["host"] == "tb.local"
    assert config.thingsboard["port"] == 8883
    assert config.thingsboard["security"] == {"type": "accessToken", "accessToken": "ENV_TOKEN",
                                              "checkServerHostname": True}
    assert config.thingsboard["rateLimits"] == "10:1,100:60"


def test_env_overrides_username_password_security(tmp_path):
    env = {"TB_GW_SECURITY_TYPE": "usernamePassword", "TB_GW_USERNAME": "u", "TB_GW_PASSWORD": "p",
           "TB_GW_CLIENT_ID": "c"}
    config = load_gateway_config(_write(tmp_path, minimal()), env=env)
    security = config.thingsboard["security"]
    assert (security["type"], security["username"], security["password"], security["clientId"]) == \
        ("usernamePassword", "u", "p", "c")


def test_env_port_that_is_not_a_number_names_the_variable(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_gateway_config(_write(tmp_path, minimal()), env={"TB_GW_PORT": "abc"})
    assert str(info.value) == 'environment: TB_GW_PORT: expected an integer 1-65535, got "abc"'


def test_env_rate_limit_is_validated(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_gateway_config(_write(tmp_path, minimal()), env={"TB_GW_RATE_LIMITS": "fast"})
    assert "thingsboard.rateLimits" in str(info.value)


def test_unknown_keys_are_warnings_not_errors(tmp_path):
    content = minimal(colour="blue")
    content["extraSection"] = {}
    config = load_gateway_config(_write(tmp_path, content), env={})
    assert sorted(config.warnings) == ["tb_gateway.json: extraSection: unknown key (ignored)",
                                       "tb_gateway.json: thingsboard.colour: unknown key (ignored)"]


def test_connector_files_resolve_relative_to_main_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "sim.json").write_text('{"devices": []}')
    content = minimal()
    content["connectors"] = [{"name": "S", "type": "simulator", "configuration": "sub/sim.json"}]
    config = load_gateway_config(_write(tmp_path, content), env={})
    assert config.connectors[0].config == {"devices": []}
    assert config.connectors[0].config_path == str(tmp_path / "sub" / "sim.json")


def test_config_path_order():
    assert default_config_path("/x/tb.json", {"TB_GW_CONFIG_DIR": "/y"}) == "/x/tb.json"
    assert default_config_path(None, {"TB_GW_CONFIG_DIR": "/y"}) == "/y/tb_gateway.json"
    assert default_config_path(None, {}) == "/etc/thingsboard-gateway/config/tb_gateway.json"


def test_check_prints_summary_without_secrets(tmp_path):
    content = minimal()
    content["thingsboard"]["security"]["accessToken"] = "VERY_SECRET_TOKEN"
    result = run_cli(["check", "--config", _write(tmp_path, content)])
    assert result.returncode == 0, result.stderr
    assert "security:   accessToken" in result.stdout
    assert "VERY_SECRET_TOKEN" not in result.stdout + result.stderr


def test_upstream_logs_json_is_accepted(tmp_path):
    from thingsboard_gateway.config.logs import setup_logging
    import logging
    reference = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "config", "logs.json")
    with open(reference) as f:
        logs = json.load(f)
    for handler in logs["handlers"].values():
        if "filename" in handler:
            handler["filename"] = str(tmp_path / "logs" / os.path.basename(handler["filename"]))
    (tmp_path / "logs.json").write_text(json.dumps(logs))
    try:
        setup_logging(str(tmp_path))
        logging.getLogger("thingsboard_gateway.storage.memory").info("hello storage")
        for handler in logging.getLogger("thingsboard_gateway.storage").handlers:
            handler.flush()
        assert "hello storage" in (tmp_path / "logs" / "storage.log").read_text()
    finally:
        for name in ("thingsboard_gateway", "thingsboard_gateway.storage", "thingsboard_gateway.platform",
                     "thingsboard_gateway.connectors", "thingsboard_gateway.conversion", "extensions"):
            logger = logging.getLogger(name)
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
                handler.close()
            logger.propagate = True
            logger.setLevel(logging.NOTSET)


def test_without_logs_json_protocol_libraries_stay_at_warning(tmp_path):
    from thingsboard_gateway.config.logs import THIRD_PARTY, setup_logging
    import logging
    try:
        setup_logging(str(tmp_path))
        assert not logging.getLogger("opcua.uaprotocol").isEnabledFor(logging.INFO)
        assert logging.getLogger("opcua.uaprotocol").isEnabledFor(logging.WARNING)
        assert logging.getLogger("thingsboard_gateway.connectors.opcua").isEnabledFor(logging.INFO)
    finally:
        for name in THIRD_PARTY:
            logging.getLogger(name).setLevel(logging.NOTSET)


def test_opcua_pre_35_entries_are_converted_and_short_periods_raised():
    from thingsboard_gateway.connectors.opcua import config as opcua_config
    old = {"server": {"url": "localhost:4840/freeopcua/server/", "scanPeriodInMillis": 5,
                      "subCheckPeriodInMillis": 1,
                      "mapping": [{"deviceNodePattern": "Root\\.Objects\\.Device1", "deviceNamePattern": "Device A",
                                   "deviceTypePattern": "T ${Type}",
                                   "timeseries": [{"key": "t", "path": "${ns=2;i=5}"}],
                                   "rpc_methods": [{"method": "m", "arguments": [2, 1.5, "x", True]}],
                                   "attributes_updates": [{"attributeOnThingsBoard": "a",
                                                           "attributeOnDevice": "Root\\.Objects\\.Device1\\.A"}]}]}}
    warnings = []
    config = opcua_config.load(old, "old.json", warnings)
    server, mapping = config["server"], config["mapping"][0]
    assert server["url"] == "opc.tcp://localhost:4840/freeopcua/server/"
    assert server["enableSubscriptions"] is True  # upstream's old default: disableSubscriptions false
    assert (server["pollPeriodInMillis"], server["subCheckPeriodInMillis"], server["scanPeriodInMillis"]) == \
        (100, 10, 3600000)
    assert mapping["deviceInfo"] == {"deviceNameExpression": "Device A", "deviceNameExpressionSource": "constant",
                                     "deviceProfileExpression": "T ${Type}", "deviceProfileExpressionSource": "path"}
    assert mapping["timeseries"] == [{"key": "t", "type": "identifier", "value": "${ns=2;i=5}"}]
    assert mapping["rpc_methods"][0]["arguments"] == [
        {"type": "integer", "value": 2}, {"type": "double", "value": 1.5}, {"type": "string", "value": "x"},
        {"type": "boolean", "value": True}]
    assert mapping["attributes_updates"] == [{"key": "a", "type": "path", "value": "Root\\.Objects\\.Device1\\.A"}]
    assert len([w for w in warnings if "pre-3.5" in w]) == 1
    assert len([w for w in warnings if "is below" in w]) == 2
    assert "mapping" in old["server"]  # the caller's file is not changed


def test_an_opcua_file_in_the_current_shape_is_not_converted():
    from thingsboard_gateway.connectors.opcua import config as opcua_config
    warnings = []
    opcua_config.load({"server": {"url": "opc.tcp://h:4840"}, "mapping": [{"deviceNodePattern": "Root\\.Objects\\.D",
                                                                          "timeseries": [{"key": "k", "value": "${K}"}]}]},
                      "new.json", warnings)
    assert warnings == []
