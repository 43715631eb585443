"""Validation of the REST connector's file (upstream rest.json), with defaults."""
from typing import Any, Dict, List, Optional

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.schema import ACCEPTED_VALUE, Field, validate
from thingsboard_gateway.connectors.http.config import OUTGOING

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def _port(value):
    # type: (Any) -> Optional[str]
    text = str(value)
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        return "expected a port 1-65535 (a number or its text), got %r" % (value,)
    return None


SECURITY = Field("object", default=dict, fields={
    "type": Field("str", choices=["anonymous", "basic"], default="anonymous"),
    "username": Field("str"),
    "password": Field("str"),
})

METHOD_LIST = Field("list", item=Field("str", choices=METHODS + [m.lower() for m in METHODS]),
                    default=lambda: ["POST"])

SERVER = Field("object", required=True, fields={
    "host": Field("str", default="127.0.0.1"),
    "port": Field("any", required=True, check=_port),
    "SSL": Field("bool", default=False),
    "security": Field("object", default=dict, fields={"cert": Field("str"), "key": Field("str")}),
    # ours: bounds for broken or hostile clients
    "maxBodySize": Field("int", min=1, default=1024 * 1024),
    "readTimeoutSec": Field("number", min=0.1, default=10),
    "maxConcurrentRequests": Field("int", min=1, default=64),
    "storageTimeoutSec": Field("number", min=0.1, default=10),
    "retryAfterSec": Field("int", min=1, default=5),
})

MAPPING = Field("object", fields={
    "endpoint": Field("str", required=True, check=lambda v: None if v.startswith("/") else "expected a path "
                                                                                          "starting with /"),
    "HTTPMethods": METHOD_LIST,
    "security": SECURITY,
    "response": Field("object", default=dict, fields={
        "responseExpected": Field("bool", default=False),
        "timeout": Field("number", min=0.1, default=120),
        "responseAttribute": Field("str"),
    }),
    "converter": Field("object", required=True, extra=True, fields={
        "type": Field("str", choices=["json", "custom"], default="json"),
    }),
})

ATTRIBUTE_REQUEST = Field("object", fields={
    "endpoint": Field("str", required=True),
    "type": Field("str", choices=["shared", "client"], default="shared"),
    "HTTPMethods": METHOD_LIST,
    "security": SECURITY,
    "timeout": Field("number", min=0.1, default=10),
    "deviceNameExpression": Field("str", required=True),
    "attributeNameExpression": Field("str", required=True),
})

CONNECTOR = Field("object", fields={
    "name": ACCEPTED_VALUE, "id": ACCEPTED_VALUE, "logLevel": ACCEPTED_VALUE, "configuration": ACCEPTED_VALUE,
    "enableRemoteLogging": ACCEPTED_VALUE, "configVersion": ACCEPTED_VALUE,
    "server": SERVER,
    "mapping": Field("list", item=MAPPING, default=list),
    "requestsMapping": Field("object", default=dict, fields={
        "attributeRequests": Field("list", item=ATTRIBUTE_REQUEST, default=list),
        "attributeUpdates": Field("list", item=OUTGOING, default=list),
        "serverSideRpc": Field("list", item=OUTGOING, default=list),
    }),
})


def load(config, file, warnings=None):
    # type: (Any, str, Optional[List[str]]) -> Dict[str, Any]
    """The validated file with defaults (methods upper-cased, port an int)."""
    if not isinstance(config, dict):
        raise ConfigError(file, "", "expected a JSON object")
    config = validate(config, CONNECTOR, file, "", warnings)
    server = config["server"]
    server["port"] = int(str(server["port"]))
    if server["SSL"] and not (server["security"].get("cert") and server["security"].get("key")):
        raise ConfigError(file, "server.security", "SSL needs cert and key")
    seen = {}  # type: Dict[str, str]
    entries = [("mapping[%d]" % i, m) for i, m in enumerate(config["mapping"])] + [
        ("requestsMapping.attributeRequests[%d]" % i, r)
        for i, r in enumerate(config["requestsMapping"]["attributeRequests"])]
    for where, entry in entries:
        entry["HTTPMethods"] = [m.upper() for m in entry["HTTPMethods"]]
        if entry["endpoint"] in seen:
            raise ConfigError(file, where + ".endpoint", "%s is also %s" % (entry["endpoint"], seen[entry["endpoint"]]))
        seen[entry["endpoint"]] = where
        security = entry["security"]
        if security["type"] == "basic" and not (security.get("username") and "password" in security):
            raise ConfigError(file, where + ".security", "basic security needs username and password")
    return config
