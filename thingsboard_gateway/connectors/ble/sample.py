"""`check --connector ble.json --sample S` and the case folders: the uplink converter on a
recorded sample (kept apart from uplink.py, which must not import the config module)."""
from typing import Any, List, Tuple

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.connectors.kit import now_ms
from thingsboard_gateway.connectors.ble.config import full_uuid, load
from thingsboard_gateway.connectors.ble.uplink import BleUplinkConverter


def convert_sample(config, shown, sample):
    # type: (Any, str, Any) -> Tuple[Any, List[Tuple[str, str]]]
    """For `check --sample` and the case folders: {"deviceName" (default: the first device),
    "values": {characteristicUUID: hex}, "ts": ms} -> (converted, failures)."""
    devices = load(config, shown)["devices"]
    if not isinstance(sample, dict) or not isinstance(sample.get("values"), dict):
        raise ConfigError("sample", "values", "expected {\"values\": {characteristicUUID: hex bytes}}")
    name = sample.get("deviceName") or (devices[0]["name"] if devices else None)
    device = next((d for d in devices if d["name"] == name), None)
    if device is None:
        raise ConfigError("sample", "deviceName", "no device named %r in %s" % (name, shown))
    try:
        values = {full_uuid(k): bytes.fromhex(v) for k, v in sample["values"].items()}
    except (TypeError, ValueError, AttributeError) as e:
        raise ConfigError("sample", "values", "expected hex bytes per characteristic (%s)" % e)
    return BleUplinkConverter().convert_detailed(device, {"values": values, "ts": sample.get("ts") or now_ms()})
