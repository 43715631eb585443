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

# The gateway as a Modbus slave (upstream's `slave` section; served.py, server.py).
SERVED_TAG = Field("object", fields=dict(TAG.fields, functionCode=Field("int", choices=READ_CODES + WRITE_CODES)))
SERVER_VALUES = Field("object", default=dict, fields={
    section: Field("object", default=dict, fields={kind: Field("list", item=SERVED_TAG, default=list) for kind in
                                                  ("attributes", "timeseries", "attributeUpdates", "rpc")})
    for section in ("holding_registers", "coils_initializer", "input_registers", "discrete_inputs")})
SERVER = Field("object", fields={
    "type": Field("str", choices=["tcp", "udp", "serial"], default="tcp"),
    "host": Field("str", default="0.0.0.0"),
    "port": Field("any", required=True),
    "method": Field("str", choices=["socket", "rtu", "ascii"]),
    "baudrate": Field("int", min=1, default=19200),
    "bytesize": Field("int", choices=[5, 6, 7, 8], default=8),
    "parity": Field("str", choices=["N", "E", "O", "M", "S"], default="N"),
    "stopbits": Field("number", choices=[1, 1.5, 2], default=1),
    "unitId": Field("int", min=0, max=247, default=1),
    "deviceName": Field("str", default="Modbus Slave"),
    "deviceType": Field("str", default="default"),
    "pollPeriod": Field("int", min=10, default=5000),
    "sendDataToThingsBoard": Field("bool", default=False),
    "byteOrder": Field("str", choices=["BIG", "LITTLE"], default="BIG"),
    "wordOrder": Field("str", choices=["BIG", "LITTLE"], default="BIG"),
    "identity": Field("object", default=dict, extra=True),
    "connectionTimeoutSec": Field("number", min=1, default=300),  # ours: an idle master is cut after it
    "maxConnections": Field("int", min=1, max=1000, default=256),  # ours
    "values": SERVER_VALUES,
})

CONNECTOR = Field("object", fields={
    "name": ACCEPTED_VALUE, "id": ACCEPTED_VALUE, "logLevel": ACCEPTED_VALUE, "configuration": ACCEPTED_VALUE,
    "enableRemoteLogging": ACCEPTED_VALUE, "configVersion": ACCEPTED_VALUE, "slave": SERVER,
    "master": Field("object", default=lambda: {"slaves": []},
                    fields={"slaves": Field("list", item=SLAVE, default=list)}),
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
    if config.get("slave"):
        check_server(config["slave"], file)
    elif not config["master"]["slaves"]:
        raise ConfigError(file, "master.slaves", "nothing to do: no slave to poll and no `slave` section to serve")
    return config


def check_server(server, file):
    # type: (Dict[str, Any], str) -> None
    """The `slave` section's cross-key rules; every entry's value fits its type."""
    if server["type"] == "serial":
        if not isinstance(server["port"], str):
            raise ConfigError(file, "slave.port", "expected a serial device path like \"/dev/ttyUSB0\"")
        server.setdefault("method", "rtu")
    else:
        if isinstance(server["port"], bool) or not isinstance(server["port"], int) or not 1 <= server["port"] <= 65535:
            raise ConfigError(file, "slave.port", "expected an integer 1-65535, got %r" % (server["port"],))
        server.setdefault("method", "socket")
    from thingsboard_gateway.connectors.modbus.served import TABLES, encode, make_entry
    for name, table in TABLES:
        for kind, items in server["values"][name].items():
            for j, item in enumerate(items):
                where = "slave.values.%s.%s[%d]" % (name, kind, j)
                if kind == "attributeUpdates" and item.get("functionCode") in READ_CODES:
                    raise ConfigError(file, where + ".functionCode", "expected one of %s for attributeUpdates"
                                      % WRITE_CODES)
                if item.get("value") is not None:
                    try:
                        encode(make_entry(server, table, kind, item), item["value"])
                    except ValueError as e:
                        raise ConfigError(file, where + ".value", str(e))
