"""Validation of the Modbus connector's file (upstream modbus.json), with defaults."""
from typing import Any, Dict, List, Optional

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.schema import ACCEPTED_VALUE, Field, validate
from thingsboard_gateway.connectors.modbus.codec import ALIASES, TYPES

ORDER = Field("str", choices=["BIG", "LITTLE"])
READ_CODES, WRITE_CODES = [1, 2, 3, 4], [5, 6, 15, 16]

TAG = Field("object", fields={
    "tag": Field("str", required=True),
    "type": Field("str", choices=TYPES + sorted(ALIASES), default="16int"),
    "functionCode": Field("int", choices=READ_CODES + WRITE_CODES),
    "address": Field("int", min=0, max=65535, required=True),
    "objectsCount": Field("int", min=1, max=2000, default=1),
    "divider": Field("number"),
    "multiplier": Field("number"),
    "bitTargetType": Field("str", choices=["bool", "int"], default="bool"),
    "byteOrder": ORDER,
    "wordOrder": ORDER,
    "value": ACCEPTED_VALUE,
})

SLAVE = Field("object", fields={
    "type": Field("str", choices=["tcp", "udp", "serial"], default="tcp"),
    "host": Field("str"),
    "port": Field("any", required=True),
    "method": Field("str", choices=["socket", "rtu", "ascii", "tls"], default="socket"),
    "baudrate": Field("int", min=1, default=19200),
    "bytesize": Field("int", choices=[5, 6, 7, 8], default=8),
    "parity": Field("str", choices=["N", "E", "O", "M", "S"], default="N"),
    "stopbits": Field("number", choices=[1, 1.5, 2], default=1),
    "unitId": Field("int", min=0, max=255, default=1),
    "deviceName": Field("str", required=True),
    "deviceType": Field("str", default="default"),
    "timeout": Field("number", min=0.01, default=3),
    "byteOrder": Field("str", choices=["BIG", "LITTLE"], default="BIG"),
    "wordOrder": Field("str", choices=["BIG", "LITTLE"], default="BIG"),
    "retries": Field("any", default=3),  # upstream's serial example says `true`
    "retryOnEmpty": ACCEPTED_VALUE,
    "retryOnInvalid": ACCEPTED_VALUE,
    "pollPeriod": Field("int", min=10, default=5000),
    "connectAttemptTimeMs": Field("int", min=0, default=500),
    "connectAttemptCount": Field("int", min=1, default=5),
    "waitAfterFailedAttemptsMs": Field("int", min=0, default=30000),
    "sendDataOnlyOnChange": Field("bool", default=False),
    "fullReportPeriodMs": Field("int", min=1000, default=60000),
    "mergeReads": Field("bool", default=True),
    # Custom converters (class names in <extensions>/modbus/): uplink gets
    # convert(slave, {"reads": [{"functionCode", "address", "values"}], "ts": ms}),
    # downlink convert(slave, {"tag": tag, "value": value}) -> [(method, address, argument)].
    "converter": Field("str"), "uplink_converter": Field("str"), "downlink_converter": Field("str"),
    "attributes": Field("list", item=TAG, default=list),
    "timeseries": Field("list", item=TAG, default=list),
    "attributeUpdates": Field("list", item=TAG, default=list),
    "rpc": Field("list", item=TAG, default=list),
})

# The gateway as a Modbus slave (upstream's `slave` section): validated, not served yet.
SERVER_VALUES = Field("object", extra=True, fields={
    section: Field("object", extra=True, fields={kind: Field("list", item=TAG) for kind in
                                                  ("attributes", "timeseries", "attributeUpdates", "rpc")})
    for section in ("holding_registers", "coils_initializer", "input_registers", "discrete_inputs")})
SERVER = Field("object", extra=True, fields={
    "type": Field("str", choices=["tcp", "udp", "serial"], default="tcp"),
    "host": Field("str"),
    "port": Field("any"),
    "method": Field("str", choices=["socket", "rtu", "ascii", "tls"]),
    "unitId": Field("int", min=0, max=255),
    "deviceName": Field("str"),
    "pollPeriod": Field("int", min=10),
    "byteOrder": ORDER,
    "wordOrder": ORDER,
    "values": SERVER_VALUES,
})

CONNECTOR = Field("object", fields={
    "name": ACCEPTED_VALUE, "id": ACCEPTED_VALUE, "logLevel": ACCEPTED_VALUE, "configuration": ACCEPTED_VALUE,
    "enableRemoteLogging": ACCEPTED_VALUE, "configVersion": ACCEPTED_VALUE, "slave": SERVER,
    "master": Field("object", required=True, fields={"slaves": Field("list", item=SLAVE, required=True)}),
})


def load(config, file, warnings=None):
    # type: (Any, str, Optional[List[str]]) -> Dict[str, Any]
    if not isinstance(config, dict):
        raise ConfigError(file, "", "expected a JSON object")
    config = validate(config, CONNECTOR, file, "", warnings)
    for i, slave in enumerate(config["master"]["slaves"]):
        where = "master.slaves[%d]" % i
        retries = slave["retries"]
        if isinstance(retries, bool):
            slave["retries"] = 3 if retries else 0
        elif not isinstance(retries, int) or retries < 0:
            raise ConfigError(file, where + ".retries", "expected an integer >= 0 (or true/false), got %r" % (retries,))
        if slave["type"] in ("tcp", "udp"):
            if not slave.get("host"):
                raise ConfigError(file, where + ".host", "required for type %s" % slave["type"])
            if not isinstance(slave["port"], int) or isinstance(slave["port"], bool) or not 1 <= slave["port"] <= 65535:
                raise ConfigError(file, where + ".port", "expected an integer 1-65535, got %r" % (slave["port"],))
        elif not isinstance(slave["port"], str):
            raise ConfigError(file, where + ".port", "expected a serial device path like \"/dev/ttyUSB0\"")
        for section, codes in (("attributes", READ_CODES), ("timeseries", READ_CODES),
                               ("attributeUpdates", WRITE_CODES), ("rpc", READ_CODES + WRITE_CODES)):
            for j, tag in enumerate(slave[section]):
                if tag.get("functionCode") is None:
                    tag["functionCode"] = 3 if section in ("attributes", "timeseries") else (
                        5 if tag["type"] in ("bits", "bit", "coil") else 16)
                if tag["functionCode"] not in codes:
                    raise ConfigError(file, "%s.%s[%d].functionCode" % (where, section, j),
                                      "expected one of %s for %s, got %d" % (codes, section, tag["functionCode"]))
    if config.get("slave") and warnings is not None:
        warnings.append("%s: slave: serving as a Modbus slave is not supported yet (section ignored)" % file)
    return config
