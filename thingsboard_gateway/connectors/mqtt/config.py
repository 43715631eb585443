"""Validation of the MQTT connector's file (upstream mqtt.json), with defaults."""
from typing import Any, Dict, List, Optional

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.schema import ACCEPTED_VALUE, Field, validate

SECURITY = Field("object", default=dict, fields={
    "type": Field("str", choices=["anonymous", "basic", "certificates"], default="anonymous"),
    "username": Field("str"),
    "password": Field("str"),
    "caCert": Field("str"),
    "cert": Field("str"),
    "privateKey": Field("str"),
    "insecure": Field("bool", default=False),
})

BROKER = Field("object", required=True, fields={
    "name": Field("str", default="MQTT broker"),
    "host": Field("str", required=True),
    "port": Field("int", min=1, max=65535, default=1883),
    "clientId": Field("str"),
    "version": Field("int", choices=[3, 4, 5], default=4),
    "cleanSession": Field("bool", default=True),
    "cleanStart": Field("bool"),
    "sessionExpiryInterval": Field("int", min=0, default=0),
    "keepalive": Field("int", min=5, default=60),
    "security": SECURITY,
    "maxMessageNumberPerWorker": ACCEPTED_VALUE,
    "maxNumberOfWorkers": ACCEPTED_VALUE,
    "sendDataOnlyOnChange": Field("bool", default=False),
    "queueSize": Field("int", min=1, default=2000),
    "reconnect": Field("object", default=dict, fields={
        "minDelay": Field("int", min=0, default=1000),
        "maxDelay": Field("int", min=0, default=60000),
    }),
})

MAPPING = Field("object", fields={
    "topicFilter": Field("str", required=True),
    "subscriptionQos": Field("int", min=0, max=2, default=1),
    "converter": Field("object", required=True, extra=True, fields={
        "type": Field("str", choices=["json", "bytes", "custom"], default="json"),
    }),
})

CONNECTOR = Field("object", fields={
    "name": ACCEPTED_VALUE,
    "id": ACCEPTED_VALUE,
    "logLevel": ACCEPTED_VALUE,
    "enableRemoteLogging": ACCEPTED_VALUE,
    "configVersion": ACCEPTED_VALUE,
    "broker": BROKER,
    "mapping": Field("list", item=MAPPING, default=list),
    "requestsMapping": Field("any", default=dict),
    # Older upstream files keep the request lists at the top level.
    "connectRequests": ACCEPTED_VALUE,
    "disconnectRequests": ACCEPTED_VALUE,
    "attributeRequests": ACCEPTED_VALUE,
    "attributeUpdates": ACCEPTED_VALUE,
    "serverSideRpc": ACCEPTED_VALUE,
})


def load(config, file, warnings=None):
    # type: (Any, str, Optional[List[str]]) -> Dict[str, Any]
    """The validated connector config with defaults; requests lists gathered into
    `requestsMapping` whichever layout the file uses."""
    if not isinstance(config, dict):
        raise ConfigError(file, "", "expected a JSON object")
    config = validate(config, CONNECTOR, file, "", warnings)
    requests = config.get("requestsMapping") or {}
    if not isinstance(requests, dict):
        raise ConfigError(file, "requestsMapping", "expected an object of request lists")
    for kind in ("connectRequests", "disconnectRequests", "attributeRequests", "attributeUpdates", "serverSideRpc"):
        if kind in config and kind not in requests:
            requests[kind] = config[kind]
        if not isinstance(requests.get(kind, []), list):
            raise ConfigError(file, "requestsMapping." + kind, "expected a list")
    config["requestsMapping"] = requests
    security = config["broker"]["security"]
    if security["type"] == "basic" and not security.get("username"):
        raise ConfigError(file, "broker.security.username", "required for security type basic")
    return config
