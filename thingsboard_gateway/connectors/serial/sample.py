"""`check --connector FILE --sample S` and the case folders for the serial connector: the
uplink converter on a recorded sample (apart from uplink.py, which must not import the
config module)."""
from typing import Any, List, Tuple

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.connectors.kit import now_ms
from thingsboard_gateway.connectors.serial.config import load
from thingsboard_gateway.connectors.serial.uplink import SerialUplinkConverter


def convert_sample(config, shown, sample):
    # type: (Any, str, Any) -> Tuple[Any, List[Tuple[str, str]]]
    """For `check --sample` and the case folders: {"deviceName" (default: the first
    device), "frame": text or "frameHex": hex, "ts": ms} -> (converted, failures)."""
    devices = load(config, shown)["devices"]
    if not isinstance(sample, dict) or not isinstance(sample.get("frame", sample.get("frameHex")), str):
        raise ConfigError("sample", "frame", "expected {\"frame\": text} or {\"frameHex\": hex}")
    name = sample.get("deviceName") or devices[0]["name"]
    device = next((d for d in devices if d["name"] == name), None)
    if device is None:
        raise ConfigError("sample", "deviceName", "no device named %r in %s" % (name, shown))
    try:
        frame = bytes.fromhex(sample["frameHex"]) if "frameHex" in sample else sample["frame"].encode("utf-8")
    except ValueError as e:
        raise ConfigError("sample", "frameHex", str(e))
    return SerialUplinkConverter().convert_detailed(device, {"frame": frame, "ts": sample.get("ts") or now_ms()})
