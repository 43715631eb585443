"""`check --connector socket.json --sample S` and the case folders: the uplink converter on a
recorded sample (kept apart from uplink.py, which must not import the config module)."""
from typing import Any, List, Tuple

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.connectors.kit import now_ms
from thingsboard_gateway.connectors.socket.config import load
from thingsboard_gateway.connectors.socket.uplink import AttributeRequest, DeviceConverter, address_pattern


def convert_sample(config, shown, sample):
    # type: (Any, str, Any) -> Tuple[Any, List[Tuple[str, str]]]
    """For `check --sample` and the case folders: {"address": "ip:port" (default
    "127.0.0.1:5000"), "data": text or "dataHex": hex, "ts": ms} -> (converted, failures).
    A message that is an attribute request gives {"attributeRequest": name, "shared": bool}."""
    devices = load(config, shown)["devices"]
    if not isinstance(sample, dict) or not isinstance(sample.get("data", sample.get("dataHex")), str):
        raise ConfigError("sample", "data", "expected {\"data\": text} or {\"dataHex\": hex}")
    try:
        data = bytes.fromhex(sample["dataHex"]) if "dataHex" in sample else sample["data"].encode("utf-8")
    except ValueError as e:
        raise ConfigError("sample", "dataHex", str(e))
    address = sample.get("address", "127.0.0.1:5000")
    device = next((d for d in devices if address_pattern(d.get("addressFilter") or d["address"]).match(address)), None)
    if device is None:
        raise ConfigError("sample", "address", "no device of %s matches %s" % (shown, address))
    for i, entry in enumerate(device["attributeRequests"]):
        request = AttributeRequest(entry, shown, "attributeRequests[%d]" % i)
        name = request.attribute(data, device["encoding"])
        if name is not None:
            return {"attributeRequest": name, "shared": request.shared}, []
    return DeviceConverter(device).convert(data, sample.get("ts") or now_ms())
