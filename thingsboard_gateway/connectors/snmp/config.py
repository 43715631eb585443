"""Validation of the SNMP connector's file (upstream snmp.json), with defaults."""
import re
from typing import Any, Dict, List, Optional

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.schema import ACCEPTED_VALUE, Field, validate
from thingsboard_gateway.connectors.snmp.protocol import VERSIONS

READ_METHODS = ("get", "multiget", "getnext", "multigetnext", "walk", "multiwalk", "bulkget", "bulkwalk", "table",
                "bulktable")
WRITE_METHODS = ("set", "multiset")
OID_TEXT = re.compile(r"^\.?\d+(\.\d+)*$")


def _oid_problem(value):
    # type: (Any) -> Optional[str]
    values = value if isinstance(value, list) else [value]
    for oid in values:
        if not isinstance(oid, str) or not OID_TEXT.match(oid.strip()):
            return "expected a numeric OID such as \"1.3.6.1.2.1.1.1.0\", got %r" % (oid,)
    return None


OID = Field("any", check=_oid_problem)
OIDS = Field("list", item=Field("str", check=_oid_problem))

# What every request entry may say (a read key, an attribute update, an RPC).
REQUEST = {
    "oid": OID,
    "scalarOid": OIDS,
    "repeatingOid": OIDS,
    "maxListSize": Field("int", min=1, max=1000, default=1),
    "bulkSize": Field("int", min=1, max=1000, default=10),
    "numBaseNodes": Field("int", min=0, default=0),
    "community": Field("str"),
    "timeout": Field("number", min=0.01),
}

ENTRY = Field("object", extra=True, fields=dict(REQUEST, **{
    "key": Field("str", required=True),
    "method": Field("str", choices=list(READ_METHODS), default="get"),
}))

WRITE = Field("object", extra=True, fields=dict(REQUEST, **{
    "attributeFilter": Field("str"),
    "requestFilter": Field("str"),
    "method": Field("str", choices=list(READ_METHODS + WRITE_METHODS), required=True),
    "mappings": Field("object", extra=True),
}))

DEVICE = Field("object", extra=True, fields={
    "deviceName": Field("str", required=True),
    "deviceType": Field("str", default="default"),
    "ip": Field("str", required=True),
    "port": Field("int", min=1, max=65535, default=161),
    "pollPeriod": Field("int", min=10, default=10000),
    "community": Field("str", default="public"),
    "version": Field("any", default="v2c"),
    "timeout": Field("number", min=0.01, default=6),  # seconds, as upstream
    "retries": Field("int", min=0, max=10, default=2),  # resends after the first, per request
    "converter": Field("str"),
    "attributes": Field("list", item=ENTRY, default=list),
    "telemetry": Field("list", item=ENTRY, default=list),
    "attributeUpdateRequests": Field("list", item=WRITE, default=list),
    "serverSideRpcRequests": Field("list", item=WRITE, default=list),
    "reportStrategy": ACCEPTED_VALUE,
})

CONNECTOR = Field("object", fields={
    "name": ACCEPTED_VALUE, "id": ACCEPTED_VALUE, "logLevel": ACCEPTED_VALUE, "configuration": ACCEPTED_VALUE,
    "enableRemoteLogging": ACCEPTED_VALUE, "configVersion": ACCEPTED_VALUE, "reportStrategy": ACCEPTED_VALUE,
    "devices": Field("list", item=DEVICE, default=list),
})


def version_number(value, file, path):
    # type: (Any, str, str) -> int
    """v1 -> 0, v2c -> 1 (the wire's numbers); v3 is refused with a reason."""
    text = str(value).strip().lower()
    if text in VERSIONS:
        return VERSIONS[text]
    if text in ("3", "v3"):
        raise ConfigError(file, path, "SNMPv3 is not supported (the SNMP library, puresnmp 1.11, speaks v1 and "
                                      "v2c); use \"v2c\" or \"v1\"")
    raise ConfigError(file, path, "expected \"v1\" or \"v2c\", got %r" % (value,))


def _check_entry(entry, file, path, write=False):
    # type: (Dict[str, Any], str, str, bool) -> None
    method = entry["method"]
    if method == "bulkget":
        if not entry.get("scalarOid") and not entry.get("repeatingOid"):
            raise ConfigError(file, path + ".scalarOid", "bulkget needs scalarOid and/or repeatingOid")
        return
    if method == "multiset":
        return  # its OIDs come in `mappings` or in the request
    oid = entry.get("oid")
    if oid is None:
        if write and method == "set":
            return  # the OID may come with the request
        raise ConfigError(file, path + ".oid", "required for method %s" % method)
    many = method in ("multiget", "multigetnext", "multiwalk", "bulkwalk")
    if many and not isinstance(oid, list):
        entry["oid"] = [oid]
    if not many and isinstance(oid, list):
        if len(oid) != 1:
            raise ConfigError(file, path + ".oid", "method %s takes one OID, got %d" % (method, len(oid)))
        entry["oid"] = oid[0]
    for pattern_key in ("attributeFilter", "requestFilter"):
        if entry.get(pattern_key) is not None:
            try:
                re.compile(entry[pattern_key])
            except re.error as e:
                raise ConfigError(file, path + "." + pattern_key, "not a regular expression: %s" % e)


def load(config, file, warnings=None):
    # type: (Any, str, Optional[List[str]]) -> Dict[str, Any]
    """The validated file with defaults; ConfigError for a bad one."""
    if not isinstance(config, dict):
        raise ConfigError(file, "", "expected a JSON object")
    config = validate(config, CONNECTOR, file, "", warnings)
    for i, device in enumerate(config["devices"]):
        path = "devices[%d]" % i
        device["versionNumber"] = version_number(device["version"], file, path + ".version")
        for section in ("attributes", "telemetry"):
            for j, entry in enumerate(device[section]):
                _check_entry(entry, file, "%s.%s[%d]" % (path, section, j))
        for section, pattern in (("attributeUpdateRequests", "attributeFilter"),
                                 ("serverSideRpcRequests", "requestFilter")):
            for j, entry in enumerate(device[section]):
                where = "%s.%s[%d]" % (path, section, j)
                if not entry.get(pattern):
                    raise ConfigError(file, where + "." + pattern, "required (a regular expression)")
                _check_entry(entry, file, where, write=True)
    names = [d["deviceName"] for d in config["devices"]]
    duplicates = sorted(set(n for n in names if names.count(n) > 1))
    if duplicates and warnings is not None:
        warnings.append("%s: several devices are called %s: their data goes to one device on the platform"
                        % (file, ", ".join(duplicates)))
    return config
