"""Validation of the OPC-UA connector's file (upstream opcua.json), with defaults, and
the compiled form of its mapping."""
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
    "scanPeriodInMillis": Field("int", min=1000, default=3600000),
    "pollPeriodInMillis": Field("int", min=10, default=5000),
    "enableSubscriptions": Field("bool", default=False),
    "subCheckPeriodInMillis": Field("int", min=10, default=100),
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
    "deviceNamePattern": Field("str"),          # older upstream spelling
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
    config = validate(config, CONNECTOR, file, "", warnings)
    server = config["server"]
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
        pattern = mapping.get("deviceNodePattern") or mapping.get("deviceNamePattern")
        if not pattern:
            raise ConfigError(file, where + ".deviceNodePattern", "required key is missing")
        mapping["deviceNodePattern"] = pattern
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
