"""Validation of the BLE connector's file (upstream ble.json), with defaults."""
import re
from typing import Any, Dict, List, Optional

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.schema import ACCEPTED_VALUE, Field, check_unique, validate
from thingsboard_gateway.conversion.casting import TYPES

MAC = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
UUID = re.compile(r"^([0-9A-Fa-f]{4}|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})$")


def _uuid(value):
    # type: (str) -> Optional[str]
    return None if UUID.match(value) else "expected a characteristic UUID (16-bit \"2A00\" or 128-bit), got %r" % value


KEY = Field("object", fields={
    "key": Field("str", required=True),
    "method": Field("str", choices=["read", "notify"], default="read"),
    "characteristicUUID": Field("str", required=True, check=_uuid),
    "valueExpression": Field("str", default="[:]"),
    "type": Field("str", choices=list(TYPES)),  # ours; upstream sends the text
})

DEVICE = Field("object", fields={
    "name": Field("str", required=True),
    "MACAddress": Field("str", required=True, check=lambda v: None if MAC.match(v) else
                        "expected a MAC address like 4C:65:A8:DF:85:C0, got %r" % v),
    "addrType": Field("str", choices=["public", "random"], default="public"),
    "deviceType": Field("str", default="default"),
    "adapter": Field("str", default="hci0", check=lambda v: None if re.match(r"^(hci)?\d+$", v) else
                     "expected an adapter like hci0"),
    "pollPeriod": Field("int", min=10, default=5000),
    "showMap": Field("bool", default=False),
    "timeout": Field("int", min=100, default=10000),
    "connectRetry": Field("int", min=1, default=5),
    "connectRetryInSeconds": Field("number", min=0, default=0),
    "waitAfterConnectRetries": Field("number", min=0, default=10),
    "converter": Field("str"),
    "telemetry": Field("list", item=KEY, default=list),
    "attributes": Field("list", item=KEY, default=list),
    "attributeUpdates": Field("list", default=list, item=Field("object", fields={
        "attributeOnThingsBoard": Field("str", required=True),
        "characteristicUUID": Field("str", required=True, check=_uuid),
        "withResponse": Field("bool", default=True),
    })),
    "serverSideRpc": Field("list", default=list, item=Field("object", fields={
        "methodRPC": Field("str", required=True),
        "withResponse": Field("bool", default=True),
        "characteristicUUID": Field("str", check=_uuid),
        "methodProcessing": Field("str", choices=["read", "write", "scan"], required=True),
    })),
})

CONNECTOR = Field("object", fields={
    "name": ACCEPTED_VALUE, "id": ACCEPTED_VALUE, "logLevel": ACCEPTED_VALUE, "configuration": ACCEPTED_VALUE,
    "enableRemoteLogging": ACCEPTED_VALUE, "configVersion": ACCEPTED_VALUE,
    "passiveScanMode": Field("bool", default=True),
    "showMap": Field("bool", default=False),
    "scanner": Field("object", default=dict, fields={
        "timeout": Field("int", min=100, default=10000),
        "deviceName": ACCEPTED_VALUE,
    }),
    "devices": Field("list", item=DEVICE, default=list),
})


def iface(adapter):
    # type: (str) -> int
    """bluepy's adapter number of "hci0" (or "0")."""
    return int(adapter[3:] if adapter.startswith("hci") else adapter)


def load(config, file, warnings=None):
    # type: (Any, str, Optional[List[str]]) -> Dict[str, Any]
    """The validated file with defaults (UUIDs lower-case, 16-bit ones expanded)."""
    from thingsboard_gateway.connectors.ble.uplink import parse_expression
    if not isinstance(config, dict):
        raise ConfigError(file, "", "expected a JSON object")
    config = validate(config, CONNECTOR, file, "", warnings)
    check_unique(config["devices"], "name", file, "devices")
    for i, device in enumerate(config["devices"]):
        where = "devices[%d]" % i
        for section in ("telemetry", "attributes", "attributeUpdates", "serverSideRpc"):
            for j, entry in enumerate(device[section]):
                if entry.get("characteristicUUID"):
                    entry["characteristicUUID"] = full_uuid(entry["characteristicUUID"])
                elif section == "serverSideRpc" and entry["methodProcessing"] != "scan":
                    raise ConfigError(file, "%s.%s[%d].characteristicUUID" % (where, section, j),
                                      "required for methodProcessing %s" % entry["methodProcessing"])
                if "valueExpression" in entry:
                    parse_expression(entry["valueExpression"], file, "%s.%s[%d].valueExpression" % (where, section, j))
    return config


def full_uuid(text):
    # type: (str) -> str
    """"2A00" -> "00002a00-0000-1000-8000-00805f9b34fb" (the Bluetooth base UUID)."""
    text = text.lower()
    return "0000%s-0000-1000-8000-00805f9b34fb" % text if len(text) == 4 else text
