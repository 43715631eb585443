"""Validation of the serial connector's file (upstream custom_serial.json), with defaults."""
from typing import Any, Dict, List, Optional

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.schema import ACCEPTED_VALUE, Field, check_unique, validate
from thingsboard_gateway.conversion.casting import TYPES
from thingsboard_gateway.conversion.expression import compile_template

KEY = Field("object", fields={
    "key": Field("str", required=True),
    "type": Field("str", choices=list(TYPES), default="string"),
    "untilDelimiter": Field("str"),
    "fromDelimiter": Field("str"),
    "fromByte": Field("int"),
    "toByte": Field("int"),
})

ATTRIBUTE_UPDATE = Field("object", fields={
    "attributeOnPlatform": Field("str"),
    "attributeOnThingsBoard": Field("str"),  # the name other upstream connectors use
    "stringToDevice": Field("str", required=True),
})

RPC = Field("object", fields={
    "method": Field("str", required=True),
    "type": Field("str", choices=list(TYPES), default="string"),
    "stringToDevice": Field("str"),
    "withResponse": Field("bool", default=False),
    "responseType": Field("str", choices=list(TYPES), default="string"),
    "responseUntilDelimiter": Field("str"),
    "responseTimeoutSec": Field("number", min=0.01, default=5),
})

DEVICE = Field("object", fields={
    "name": Field("str", required=True),
    "type": Field("str", default="default"),
    "port": Field("str", required=True),
    "baudrate": Field("int", min=1, default=9600),
    "bytesize": Field("int", choices=[5, 6, 7, 8], default=8),
    "parity": Field("str", choices=["N", "E", "O", "M", "S"], default="N"),
    "stopbits": Field("number", choices=[1, 1.5, 2], default=1),
    "timeout": Field("number", min=0, default=0.1),  # the port's read timeout, seconds
    "writeTimeout": Field("number", min=0, default=1),
    "rtscts": Field("bool", default=False),
    "xonxoff": Field("bool", default=False),
    "dsrdtr": Field("bool", default=False),
    # Framing (ours; upstream reads lines ending in "\n"): frames end with `delimiter`,
    # or are `frameLength` bytes each; longer than maxFrameLength is counted and skipped;
    # a fragment left without its end for frameTimeoutMs is counted and dropped.
    "delimiter": Field("str", default="\n"),
    "frameLength": Field("int", min=1, max=65536),
    "maxFrameLength": Field("int", min=1, max=1048576, default=4096),
    "frameTimeoutMs": Field("int", min=1, default=1000),
    # Polled devices (several on one bus): `requestString` sent every pollPeriod ms, the
    # next frame is the answer.
    "requestString": Field("str"),
    "pollPeriod": Field("int", min=10, default=1000),
    "converter": Field("str"),
    "downlink_converter": Field("str"),
    "telemetry": Field("list", item=KEY, default=list),
    "attributes": Field("list", item=KEY, default=list),
    "attributeUpdates": Field("list", item=ATTRIBUTE_UPDATE, default=list),
    "serverSideRpc": Field("list", item=RPC, default=list),
})

CONNECTOR = Field("object", fields={
    "name": ACCEPTED_VALUE, "id": ACCEPTED_VALUE, "logLevel": ACCEPTED_VALUE, "configuration": ACCEPTED_VALUE,
    "enableRemoteLogging": ACCEPTED_VALUE, "configVersion": ACCEPTED_VALUE, "uplinkQueueSize": ACCEPTED_VALUE,
    "devices": Field("list", item=DEVICE, required=True),
})


def load(config, file, warnings=None):
    # type: (Any, str, Optional[List[str]]) -> Dict[str, Any]
    """The validated file with defaults; ConfigError for a bad one."""
    if not isinstance(config, dict):
        raise ConfigError(file, "", "expected a JSON object")
    config = validate(config, CONNECTOR, file, "", warnings)
    listeners = {}  # type: Dict[str, str]
    check_unique(config["devices"], "name", file, "devices")
    for i, device in enumerate(config["devices"]):
        where = "devices[%d]" % i
        if not device["delimiter"] and not device.get("frameLength"):
            raise ConfigError(file, where + ".delimiter", "expected a delimiter or a frameLength")
        if device.get("requestString") is None:
            other = listeners.setdefault(device["port"], device["name"])
            if other != device["name"]:
                raise ConfigError(file, where, "port %s already has a listening device (%s): give one of them a "
                                               "requestString to poll it" % (device["port"], other))
        for j, update in enumerate(device["attributeUpdates"]):
            if not (update.get("attributeOnPlatform") or update.get("attributeOnThingsBoard")):
                raise ConfigError(file, "%s.attributeUpdates[%d].attributeOnPlatform" % (where, j),
                                  "required key is missing")
            compile_template(update["stringToDevice"], file, "%s.attributeUpdates[%d].stringToDevice" % (where, j))
        for j, entry in enumerate(device["serverSideRpc"]):
            if entry.get("stringToDevice") is not None:
                compile_template(entry["stringToDevice"], file, "%s.serverSideRpc[%d].stringToDevice" % (where, j))
    return config
