"""Loading tb_gateway.json and the connector files it names, with environment overrides.

Everything here returns values or raises `ConfigError`; nothing starts or connects.
"""
import json
import os
import uuid
from typing import Any, Dict, List, Mapping, Optional

from thingsboard_gateway.config.device_filter import Rules, compile_rules
from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.gateway_spec import GATEWAY, PORT
from thingsboard_gateway.config.provisioning import apply_provisioning_env, credentials_path, read_saved
from thingsboard_gateway.config.report_strategy import parse_strategy
from thingsboard_gateway.config.schema import show, validate

DEFAULT_CONFIG_PATH = "/etc/thingsboard-gateway/config/tb_gateway.json"

# Environment variable -> key of thingsboard.security it sets.
SECURITY_ENV = {
    "TB_GW_ACCESS_TOKEN": "accessToken",
    "TB_GW_USERNAME": "username",
    "TB_GW_PASSWORD": "password",
    "TB_GW_CLIENT_ID": "clientId",
    "TB_GW_SECURITY_TYPE": "type",
}

PLACEHOLDER_TOKEN = "YOUR_ACCESS_TOKEN"  # the shipped file's: no credentials yet

# What each security type needs.
SECURITY_REQUIRES = {
    "accessToken": ["accessToken"],
    "usernamePassword": [],
    "tlsAccessToken": ["accessToken", "caCert"],
    "tlsPrivateKey": ["caCert", "cert", "privateKey"],
    "tls": ["caCert", "cert", "privateKey"],
}


class ConnectorSpec(object):
    """One entry of `connectors` with its configuration file loaded."""

    def __init__(self, name, type, class_name, config_path, config, file=None, connector_id=None):
        # type: (str, str, Optional[str], str, Any, Optional[str], Optional[str]) -> None
        self.name = name
        self.id = connector_id or connector_id_of(name, config)
        self.type = type
        self.class_name = class_name
        self.config_path = config_path
        self.config = config
        self.file = file or os.path.basename(config_path)  # as tb_gateway.json names it (for messages)


def connector_id_of(name, config):
    # type: (str, Any) -> str
    """A connector's stable id (ThingsBoard's connector RPC page addresses it by it): the `id`
    of its file, else one derived from its name, the same on every start and every board."""
    if isinstance(config, dict) and isinstance(config.get("id"), str) and config["id"]:
        return config["id"]
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "thingsboard-gateway:connector:" + name))


class GatewayConfig(object):
    """The validated main configuration, with defaults filled in."""

    def __init__(self, path, raw, connectors, warnings):
        # type: (str, Dict[str, Any], List[ConnectorSpec], List[str]) -> None
        self.path = path
        self.folder = os.path.dirname(os.path.abspath(path))
        self.thingsboard = raw["thingsboard"]  # type: Dict[str, Any]
        self.storage = raw["storage"]  # type: Dict[str, Any]
        self.supervision = raw["supervision"]  # type: Dict[str, Any]
        self.connectors = connectors
        self.warnings = warnings
        self.device_filter = None  # type: Optional[Rules]  # compiled deviceFiltering rules, when enabled
        # Where thingsboard.security came from: "file" (tb_gateway.json), "saved" (an earlier
        # provisioning, credentials_path) or "provisioning" (none yet: provision first).
        self.credentials = "file"
        self.credentials_path = credentials_path(self.folder)


def default_config_path(cli_path=None, env=None):
    # type: (Optional[str], Optional[Mapping[str, str]]) -> str
    """--config PATH, else $TB_GW_CONFIG_DIR/tb_gateway.json, else the /etc default."""
    env = os.environ if env is None else env
    if cli_path:
        return cli_path
    if env.get("TB_GW_CONFIG_DIR"):
        return os.path.join(env["TB_GW_CONFIG_DIR"], "tb_gateway.json")
    return DEFAULT_CONFIG_PATH


def read_json(path, shown=None):
    # type: (str, Optional[str]) -> Any
    """Parse a JSON file; problems become a ConfigError with line and column."""
    shown = shown or path
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(shown, "", "file not found")
    except PermissionError:
        raise ConfigError(shown, "", "cannot read the file: permission denied")
    except IsADirectoryError:
        raise ConfigError(shown, "", "expected a file, found a directory")
    except UnicodeDecodeError as e:
        raise ConfigError(shown, "", "not UTF-8 text (byte %d)" % e.start)
    try:
        return json.loads(text)
    except ValueError as e:
        line = getattr(e, "lineno", None)
        col = getattr(e, "colno", None)
        reason = getattr(e, "msg", str(e))
        raise ConfigError(shown, "", "invalid JSON at line %s column %s: %s" % (line, col, reason))


def apply_env(raw, env):
    # type: (Dict[str, Any], Mapping[str, str]) -> None
    """Environment overrides, applied to the raw file content before validation."""
    tb = raw.setdefault("thingsboard", {})
    if not isinstance(tb, dict):
        return
    if env.get("TB_GW_HOST"):
        tb["host"] = env["TB_GW_HOST"]
    if env.get("TB_GW_PORT"):
        text = env["TB_GW_PORT"].strip()
        try:
            port = int(text)
        except ValueError:
            raise ConfigError("environment", "TB_GW_PORT", "expected %s, got %s" % (PORT.expected(), show(text)))
        if not 1 <= port <= 65535:
            raise ConfigError("environment", "TB_GW_PORT", "expected %s, got %s" % (PORT.expected(), show(text)))
        tb["port"] = port
    if env.get("TB_GW_RATE_LIMITS"):
        tb["rateLimits"] = env["TB_GW_RATE_LIMITS"]
    apply_provisioning_env(tb, env)
    security = tb.get("security")
    if any(env.get(name) for name in SECURITY_ENV):
        if not isinstance(security, dict):
            security = tb["security"] = {}
        for name, key in SECURITY_ENV.items():
            if env.get(name):
                security[key] = env[name]
        if env.get("TB_GW_ACCESS_TOKEN") and not env.get("TB_GW_SECURITY_TYPE") \
                and security.get("type") not in ("accessToken", "tlsAccessToken"):
            security["type"] = "accessToken"


def infer_security_type(security):
    # type: (Dict[str, Any]) -> str
    """Upstream files may leave out `type`; infer it from the keys present."""
    if security.get("type"):
        return security["type"]
    if security.get("cert") and security.get("privateKey"):
        return "tlsPrivateKey"
    if security.get("accessToken") and security.get("caCert"):
        return "tlsAccessToken"
    if security.get("accessToken"):
        return "accessToken"
    return "usernamePassword"


def check_security(security, file, folder):
    # type: (Dict[str, Any], str, str) -> None
    """Each security type's required keys, and that certificate files exist."""
    security["type"] = infer_security_type(security)
    kind = security["type"]
    for key in SECURITY_REQUIRES[kind]:
        if not security.get(key):
            raise ConfigError(file, "thingsboard.security." + key,
                              "required for security type %s (expected a non-empty string)" % kind)
    if kind == "usernamePassword" and not (security.get("username") or security.get("clientId")):
        raise ConfigError(file, "thingsboard.security.username",
                          "security type usernamePassword needs username or clientId")
    for key in ("caCert", "cert", "privateKey"):
        if security.get(key):
            security[key] = resolve_path(security[key], folder)
            if kind in ("tls", "tlsPrivateKey", "tlsAccessToken") and not os.path.isfile(security[key]):
                raise ConfigError(file, "thingsboard.security." + key, "file not found: %s" % security[key])


def choose_credentials(tb, shown, folder):
    # type: (Dict[str, Any], str, str) -> str
    """tb_gateway.json's security, else the saved credentials, else provisioning (see
    config/provisioning.py); which one it is."""
    if tb.get("provisioning") and isinstance(tb.get("security"), dict) \
            and tb["security"].get("accessToken") == PLACEHOLDER_TOKEN:
        del tb["security"]  # the .deb's file as shipped, provisioned by the environment
    if tb.get("security") is not None:
        check_security(tb["security"], shown, folder)
        return "file"
    saved = read_saved(credentials_path(folder))
    if saved is not None:
        tb["security"] = saved
        check_security(saved, os.path.basename(credentials_path(folder)), folder)
        return "saved"
    if tb.get("provisioning"):
        ca_cert = tb["provisioning"].get("caCert")
        if ca_cert:
            tb["provisioning"]["caCert"] = resolve_path(ca_cert, folder)
        return "provisioning"
    raise ConfigError(shown, "thingsboard.security", "required key is missing (expected an object; or a "
                      "`provisioning` section, or TB_GW_PROVISIONING_DEVICE_KEY and _SECRET in the environment)")


def resolve_path(path, folder):
    # type: (str, str) -> str
    """A path from a config file: absolute as is, relative to the config folder otherwise."""
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(folder, path))


def load_gateway_config(path, env=None, load_connectors=True):
    # type: (str, Optional[Mapping[str, str]], bool) -> GatewayConfig
    """Read, override from the environment, validate; then read every connector file.
    Each built-in connector validates its own file afterwards
    (connectors.registry.validate_connector_files): config does not know connectors."""
    env = os.environ if env is None else env
    shown = os.path.basename(path)
    raw = read_json(path, shown)
    if not isinstance(raw, dict):
        raise ConfigError(shown, "", "expected a JSON object at the top level, got %s" % show(raw))
    apply_env(raw, env)
    warnings = []  # type: List[str]
    raw = validate(raw, GATEWAY, shown, "", warnings)
    folder = os.path.dirname(os.path.abspath(path))
    credentials = choose_credentials(raw["thingsboard"], shown, folder)
    connectors = []
    names = set()
    for i, entry in enumerate(raw["connectors"]):
        if entry["name"] in names:
            raise ConfigError(shown, "connectors[%d].name" % i, "duplicate connector name %s" % show(entry["name"]))
        names.add(entry["name"])
        config_path = resolve_path(entry["configuration"], folder)
        config = read_json(config_path, entry["configuration"]) if load_connectors else None
        connectors.append(ConnectorSpec(entry["name"], entry["type"], entry.get("class"), config_path, config,
                                        entry["configuration"], entry.get("id") if isinstance(entry.get("id"), str)
                                        else None))
    config = GatewayConfig(path, raw, connectors, warnings)
    config.credentials = credentials
    config.device_filter = load_device_filter(raw["thingsboard"], folder, shown)
    return config


def load_device_filter(thingsboard, folder, shown):
    # type: (Dict[str, Any], str, str) -> Optional[Rules]
    """thingsboard.reportStrategy checked; the deviceFiltering file's rules when enabled."""
    parse_strategy(thingsboard["reportStrategy"], shown, "thingsboard.reportStrategy")
    settings = thingsboard["deviceFiltering"]
    if not settings["enable"]:
        return None
    path = resolve_path(settings["filterFile"], folder)
    if not os.path.isfile(path):
        raise ConfigError(shown, "thingsboard.deviceFiltering.filterFile",
                          "file not found: %s (device filtering is enabled)" % path)
    return compile_rules(read_json(path, settings["filterFile"]), settings["filterFile"])
