"""Validation of the OPC-UA connector's file (upstream opcua.json), with defaults, and
the compiled form of its mapping.

Files in upstream's shape before 3.5 (its opcua10K.json among them: `server.mapping`,
values under `path`, `deviceNamePattern` for the name, `disableSubscriptions`,
`scanPeriodInMillis` as the reading period, plain rpc arguments, `attributeOnDevice`)
are converted on load, with one warning saying so. Periods below a sane minimum are
raised to it with a warning; a file with no mapping is refused."""
import re
from typing import Any, Dict, List, Optional

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.schema import ACCEPTED_VALUE, Field, validate

SECURITY_POLICIES = ["None", "Basic128Rsa15", "Basic256", "Basic256Sha256"]

IDENTITY = Field("object", default=dict, fields={
    "type": Field("str", choices=["anonymous", "username", "cert"], default="anonymous"),
    "username": Field("str"), "password": Field("str"),
    "cert": Field("str"), "privateKey": Field("str"), "caCert": Field("str"),
    "mode": Field("str", choices=["Sign", "SignAndEncrypt"], default="SignAndEncrypt"),
})

SERVER = Field("object", required=True, fields={
    "name": ACCEPTED_VALUE,
    "url": Field("str", required=True, check=lambda v: None if v.startswith("opc.tcp://") else
                 "expected an opc.tcp:// URL, got %r" % v),
    "timeoutInMillis": Field("int", min=100, default=5000),
    "scanPeriodInMillis": Field("int", min=1, default=3600000),
    "pollPeriodInMillis": Field("int", min=1, default=5000),
    "enableSubscriptions": Field("bool", default=False),
    "subCheckPeriodInMillis": Field("int", min=1, default=100),
    "sessionTimeoutInMillis": Field("int", min=1000, default=120000),
    "security": Field("str", choices=SECURITY_POLICIES, default="None"),
    "identity": IDENTITY,
    "showMap": ACCEPTED_VALUE, "subDataMaxBatchSize": ACCEPTED_VALUE, "subDataMinBatchCreationTimeMs": ACCEPTED_VALUE,
    "subscriptionProcessBatchSize": ACCEPTED_VALUE, "disableSubscriptions": ACCEPTED_VALUE,
    "reconnect": Field("object", default=dict, fields={"minDelay": Field("int", min=0, default=1000),
                                                       "maxDelay": Field("int", min=0, default=60000)}),
})

VALUE = Field("object", fields={"key": Field("str", required=True), "type": Field("str", default="path"),
                                "value": Field("any", required=True)})

MAPPING = Field("object", fields={
    "deviceNodePattern": Field("str"),
    "deviceNodeSource": Field("str", choices=["path", "identifier"], default="path"),
    "deviceInfo": Field("object", default=dict, extra=True),
    "deviceNameExpression": ACCEPTED_VALUE, "deviceTypeExpression": ACCEPTED_VALUE,
    # A custom uplink converter (class name in <extensions>/opcua/): convert(mapping, {"deviceName",
    # "deviceType", "values": [[section, key, value, ts or null]], "ts": ms}).
    "converter": Field("str"),
    "attributes": Field("list", item=VALUE, default=list),
    "timeseries": Field("list", item=VALUE, default=list),
    "rpc_methods": Field("list", default=list, item=Field("object", fields={
        "method": Field("str", required=True),
        "arguments": Field("list", default=list, item=Field("object", fields={"type": Field("str", default="integer"),
                                                                              "value": Field("any")}))})),
    "attributes_updates": Field("list", item=Field("object", fields={
        "key": Field("str", required=True), "type": Field("str", default="path"),
        "value": Field("any", required=True), "attributeOnThingsBoard": ACCEPTED_VALUE,
        "attributeOnDevice": ACCEPTED_VALUE}), default=list),
})

CONNECTOR = Field("object", fields={
    "name": ACCEPTED_VALUE, "id": ACCEPTED_VALUE, "logLevel": ACCEPTED_VALUE, "configuration": ACCEPTED_VALUE,
    "enableRemoteLogging": ACCEPTED_VALUE, "configVersion": ACCEPTED_VALUE,
    "server": SERVER,
    "mapping": Field("list", item=MAPPING, default=list),
})

NODE_ID = re.compile(r"^(ns=\d+;)?[isgb]=.+$")

# Periods below these are raised to them (with a warning): a 1 ms poll of 10,000 nodes
# only keeps the server and the gateway busy; upstream's opcua10K.json asks for it.
MINIMUM_MS = {"pollPeriodInMillis": 100, "subCheckPeriodInMillis": 10, "scanPeriodInMillis": 1000}

# Old-shape rpc argument values -> our argument types (downlink.VARIANTS' names).
_ARGUMENT_TYPES = ((bool, "boolean"), (int, "integer"), (float, "double"), (str, "string"))


def _old_value(entry):
    # type: (Any) -> Any
    """{"key", "path"} (pre-3.5) -> {"key", "type", "value"}."""
    if not isinstance(entry, dict) or "value" in entry or "path" not in entry:
        return entry
    entry = dict(entry)
    path = entry.pop("path")
    entry["value"] = path
    entry.setdefault("type", "identifier" if isinstance(path, str) and NODE_ID.match(path.strip("${} ")) else "path")
    return entry


def _old_mapping(mapping):
    # type: (Any) -> Any
    if not isinstance(mapping, dict):
        return mapping
    mapping = dict(mapping)
    info = dict(mapping.get("deviceInfo") or {})
    for old, key, source in (("deviceNamePattern", "deviceNameExpression", "deviceNameExpressionSource"),
                             ("deviceTypePattern", "deviceProfileExpression", "deviceProfileExpressionSource")):
        pattern = mapping.pop(old, None)
        if isinstance(pattern, str) and key not in info:
            info[key] = pattern
            info[source] = "path" if "${" in pattern else "constant"
    if info:
        mapping["deviceInfo"] = info
    for section in ("attributes", "timeseries"):
        if isinstance(mapping.get(section), list):
            mapping[section] = [_old_value(e) for e in mapping[section]]
    if isinstance(mapping.get("attributes_updates"), list):
        mapping["attributes_updates"] = [
            {"key": e.get("attributeOnThingsBoard"), "type": "path", "value": e.get("attributeOnDevice")}
            if isinstance(e, dict) and "key" not in e and "attributeOnThingsBoard" in e else e
            for e in mapping["attributes_updates"]]
    if isinstance(mapping.get("rpc_methods"), list):
        mapping["rpc_methods"] = [dict(e, arguments=[
            a if isinstance(a, dict) else {"type": next((t for kind, t in _ARGUMENT_TYPES if isinstance(a, kind)),
                                                        "string"), "value": a}
            for a in e["arguments"]]) if isinstance(e, dict) and isinstance(e.get("arguments"), list) else e
            for e in mapping["rpc_methods"]]
    return mapping


def _is_old(mapping):
    # type: (Any) -> bool
    if not isinstance(mapping, dict):
        return False
    if "deviceNamePattern" in mapping or "deviceTypePattern" in mapping:
        return True
    return any(isinstance(e, dict) and ("path" in e or "attributeOnDevice" in e)
               for section in ("attributes", "timeseries", "attributes_updates")
               for e in (mapping.get(section) if isinstance(mapping.get(section), list) else []))


def upgrade(config):
    # type: (Dict[str, Any]) -> Optional[str]
    """Convert a pre-3.5 file in place; what was converted (for one warning), or None."""
    server = config.get("server")
    old_keys = [k for k in ("mapping", "disableSubscriptions") if isinstance(server, dict) and k in server]
    mappings = config.get("mapping") if "mapping" in config else (server or {}).get("mapping")
    old_entries = isinstance(mappings, list) and any(_is_old(m) for m in mappings)
    if not old_keys and not old_entries:
        return None
    done = []
    if "mapping" in old_keys and "mapping" not in config:
        config["mapping"] = server.pop("mapping")
        done.append("server.mapping")
    if old_keys and "enableSubscriptions" not in server:  # upstream's old default: subscribe
        server["enableSubscriptions"] = not server.pop("disableSubscriptions", False)
        done.append("disableSubscriptions")
    if old_keys and "pollPeriodInMillis" not in server and "scanPeriodInMillis" in server:
        # the old connector read every scanPeriodInMillis; rescans keep our default (an hour)
        server["pollPeriodInMillis"] = server.pop("scanPeriodInMillis")
        done.append("scanPeriodInMillis as the poll period")
    if isinstance(server, dict) and isinstance(server.get("url"), str) and "://" not in server["url"]:
        server["url"] = "opc.tcp://" + server["url"]
        done.append("url without opc.tcp://")
    if isinstance(config.get("mapping"), list):
        config["mapping"] = [_old_mapping(m) for m in config["mapping"]]
        if old_entries:
            done.append("deviceNamePattern and path entries")
    return ", ".join(done)


def crypto_available():
    # type: () -> bool
    """True when `cryptography`, which python-opcua needs for every security policy, imports."""
    try:
        import cryptography.hazmat.primitives  # noqa: F401
    except ImportError:
        return False
    return True


def load(config, file, warnings=None):
    # type: (Any, str, Optional[List[str]]) -> Dict[str, Any]
    if not isinstance(config, dict):
        raise ConfigError(file, "", "expected a JSON object")
    config = dict(config)
    if isinstance(config.get("server"), dict):
        config["server"] = dict(config["server"])
    converted = upgrade(config)
    if converted and warnings is not None:
        warnings.append("%s: upstream's pre-3.5 OPC-UA shape, converted on load (%s)" % (file, converted))
    config = validate(config, CONNECTOR, file, "", warnings)
    server = config["server"]
    for key, minimum in MINIMUM_MS.items():
        if server[key] < minimum:
            if warnings is not None:
                warnings.append("%s: server.%s: %d ms is below %d ms; %d ms is used"
                                % (file, key, server[key], minimum, minimum))
            server[key] = minimum
    if not config["mapping"]:
        raise ConfigError(file, "mapping", "no device mapping: the connector would read nothing (pre-3.5 files "
                          "have it under server.mapping)")
    identity = server["identity"]
    if server["security"] != "None" and not (identity.get("cert") and identity.get("privateKey")):
        # Upstream's example sets a policy without certificates and connects without one.
        if warnings is not None:
            warnings.append("%s: server.security: %s needs identity.cert and identity.privateKey; connecting "
                            "without security" % (file, server["security"]))
        server["security"] = "None"
    if server["security"] != "None" and not crypto_available():
        # python-opcua would only log a warning and connect without security.
        raise ConfigError(file, "server.security", "%s needs the Python package cryptography, which is not "
                          "installed (Debian: apt install python3-cryptography; pip: pip install cryptography)"
                          % server["security"])
    if identity["type"] == "username" and not identity.get("username"):
        raise ConfigError(file, "server.identity.username", "required for identity type username")
    for i, mapping in enumerate(config["mapping"]):
        where = "mapping[%d]" % i
        pattern = mapping.get("deviceNodePattern")
        if not pattern:
            raise ConfigError(file, where + ".deviceNodePattern", "required key is missing")
        if NODE_ID.match(pattern):
            mapping["deviceNodeSource"] = "identifier"
        else:
            try:
                mapping["compiled_pattern"] = re.compile(pattern)
            except re.error as e:
                raise ConfigError(file, where + ".deviceNodePattern", "invalid regular expression at column %d of "
                                  "%r: %s" % ((e.pos or 0) + 1, pattern, e.msg))
        for section in ("attributes", "timeseries", "attributes_updates"):
            for j, entry in enumerate(mapping[section]):
                if not isinstance(entry["value"], str):
                    raise ConfigError(file, "%s.%s[%d].value" % (where, section, j), "expected a path or node id")
    return config
