"""Where the platform credentials come from, in this order: tb_gateway.json's
`thingsboard.security`; the credentials an earlier provisioning saved in the config
folder (`.credentials`, upstream's name); else ThingsBoard's device provisioning, from
`thingsboard.provisioning` or the environment (TB_GW_PROVISIONING_*, upstream's names).

The saved file holds a `security` section as tb_gateway.json would (mode 0600, written
atomically: temp file, fsync, rename). Deleting it provisions again. Secrets never leave
this module in text meant for people: `describe()` names the key, never the secret.
"""
import json
import os
import socket
from typing import Any, Dict, Mapping, Optional

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.store import write_atomically

CREDENTIALS_FILE = ".credentials"

# Environment variable -> key of thingsboard.provisioning (upstream's names).
PROVISIONING_ENV = {
    "TB_GW_PROVISIONING_DEVICE_KEY": "provisionDeviceKey",
    "TB_GW_PROVISIONING_DEVICE_SECRET": "provisionDeviceSecret",
    "TB_GW_PROVISIONING_DEVICE_NAME": "deviceName",
    "TB_GW_PROVISIONING_DEVICE_ACCESS_TOKEN": "accessToken",
    "TB_GW_PROVISIONING_DEVICE_USERNAME": "username",
    "TB_GW_PROVISIONING_DEVICE_PASSWORD": "password",
    "TB_GW_PROVISIONING_DEVICE_CLIENT_ID": "clientId",
    "TB_GW_PROVISIONING_DEVICE_CA_CERT_FILENAME": "caCert",
}
SECRETS = ("provisionDeviceSecret", "password", "accessToken")


def apply_provisioning_env(tb, env):
    # type: (Dict[str, Any], Mapping[str, str]) -> None
    """TB_GW_PROVISIONING_* into thingsboard.provisioning, before validation. Key and
    secret come together or not at all (one alone is a mistake worth a clear error)."""
    given = {key: env[name] for name, key in PROVISIONING_ENV.items() if env.get(name)}
    if not given:
        return
    if not (given.get("provisionDeviceKey") and given.get("provisionDeviceSecret")):
        raise ConfigError("environment", "TB_GW_PROVISIONING_DEVICE_KEY",
                          "TB_GW_PROVISIONING_DEVICE_KEY and TB_GW_PROVISIONING_DEVICE_SECRET are both needed")
    section = tb.get("provisioning") if isinstance(tb.get("provisioning"), dict) else {}
    section.update(given)
    if "type" not in section:
        if given.get("username") or given.get("clientId"):
            section["type"] = "MQTT_BASIC"
    tb["provisioning"] = section


def credentials_path(folder):
    # type: (str) -> str
    return os.path.join(folder, CREDENTIALS_FILE)


def read_saved(path):
    # type: (str) -> Optional[Dict[str, Any]]
    """The security section provisioning saved, or None (absent). A damaged file is an
    error that names it: the operator deletes it to provision again."""
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ConfigError(os.path.basename(path), "", "saved credentials cannot be read (%s); delete the file "
                          "to provision again" % (getattr(e, "strerror", None) or e))
    if not isinstance(saved, dict) or not isinstance(saved.get("type"), str):
        raise ConfigError(os.path.basename(path), "", "not saved credentials; delete the file to provision again")
    return saved


def save(path, security):
    # type: (str, Dict[str, Any]) -> None
    """Atomically, mode 0600 from the start (config/store.py)."""
    write_atomically(path, json.dumps(security, indent=2).encode("utf-8"), private=True)


def device_name(provisioning):
    # type: (Dict[str, Any]) -> str
    """The name to register: configured, else the host name (the same on every start)."""
    return provisioning.get("deviceName") or socket.gethostname()


def describe(provisioning):
    # type: (Dict[str, Any]) -> str
    """What provisioning will do, without any secret."""
    key = provisioning["provisionDeviceKey"]
    shown = key[:4] + "..." if len(key) > 8 else "..."
    return "will provision as %s with key %s (credentials %s)" % (
        device_name(provisioning), shown, provisioning.get("type", "ACCESS_TOKEN"))
