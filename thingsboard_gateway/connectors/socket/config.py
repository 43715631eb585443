"""Validation of the socket connector's file (upstream socket.json), with defaults."""
import codecs
from typing import Any, Dict, List, Optional

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.schema import ACCEPTED_VALUE, Field, validate
from thingsboard_gateway.conversion.casting import TYPES


def _encoding(value):
    # type: (Any) -> Optional[str]
    try:
        codecs.lookup(value)
        return None
    except LookupError:
        return "unknown encoding %r" % value


ENCODING = Field("str", default="utf-8", check=_encoding)

KEY = Field("object", fields={
    "key": Field("str", required=True),
    "type": Field("str", choices=list(TYPES), default="string"),
    "byteFrom": Field("int", default=0),
    "byteTo": Field("int", default=-1),
})

DEVICE = Field("object", fields={
    "address": Field("str"),
    "addressFilter": Field("str"),
    "deviceName": Field("str", required=True),
    "deviceType": Field("str", default="default"),
    "encoding": ENCODING,
    "telemetry": Field("list", item=KEY, default=list),
    "attributes": Field("list", item=KEY, default=list),
    "attributeRequests": Field("list", default=list, item=Field("object", fields={
        "type": Field("str", choices=["shared", "client"], default="shared"),
        "requestExpression": Field("str", required=True),
        "attributeNameExpression": Field("str", required=True),
    })),
    "attributeUpdates": Field("list", default=list, item=Field("object", fields={
        "attributeOnThingsBoard": Field("str", required=True),
        "encoding": ENCODING,
    })),
    "serverSideRpc": Field("list", default=list, item=Field("object", fields={
        "methodRPC": Field("str", required=True),
        "withResponse": Field("bool", default=False),
        "encoding": ENCODING,
    })),
})

SOCKET = Field("object", required=True, fields={
    "address": Field("str", default="127.0.0.1"),
    "type": Field("str", choices=["TCP", "UDP", "tcp", "udp"], default="TCP"),
    "port": Field("int", min=1, max=65535, required=True),
    "bufferSize": Field("int", min=1, max=65507, default=1024),
    # ours: bounds for hostile or broken clients
    "maxConnections": Field("int", min=1, default=64),
    "idleTimeoutSec": Field("number", min=0.1, default=120),
    "delimiter": Field("str"),  # TCP framing; without it each received chunk is a message (upstream)
    "maxMessageSize": Field("int", min=1, default=65536),
})

CONNECTOR = Field("object", fields={
    "name": ACCEPTED_VALUE, "id": ACCEPTED_VALUE, "logLevel": ACCEPTED_VALUE, "configuration": ACCEPTED_VALUE,
    "enableRemoteLogging": ACCEPTED_VALUE, "configVersion": ACCEPTED_VALUE,
    "socket": SOCKET,
    "devices": Field("list", item=DEVICE, default=list),
})


def load(config, file, warnings=None):
    # type: (Any, str, Optional[List[str]]) -> Dict[str, Any]
    """The validated file with defaults (socket.type upper-cased); ConfigError for a bad one."""
    from thingsboard_gateway.connectors.socket.uplink import AttributeRequest
    if not isinstance(config, dict):
        raise ConfigError(file, "", "expected a JSON object")
    config = validate(config, CONNECTOR, file, "", warnings)
    config["socket"]["type"] = config["socket"]["type"].upper()
    for i, device in enumerate(config["devices"]):
        if not (device.get("addressFilter") or device.get("address")):
            raise ConfigError(file, "devices[%d].address" % i, "required: address or addressFilter (\"*:*\" for any)")
        for j, request in enumerate(device["attributeRequests"]):
            AttributeRequest(request, file, "devices[%d].attributeRequests[%d]" % (i, j))
    return config
