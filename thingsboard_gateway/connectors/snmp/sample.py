"""`check --connector snmp.json --sample S`: the SNMP converter on recorded results (pure).

Sample: {"deviceName": device (default: the first), "ts": ms, "results": {"<key>": result}}
with each key's result as the agent's values, plain: get -> a value; multiget -> a list;
getnext, walk, bulkget, ... -> {"<oid>": value}; table -> {"<row>": {"<column>": value}}."""
from typing import Any, List, Tuple

from thingsboard_gateway.config.errors import ConfigError


def convert_sample(config, shown, sample):
    # type: (Any, str, Any) -> Tuple[Any, List[Tuple[str, str]]]
    from thingsboard_gateway.connectors.snmp.connector import SnmpConnector
    from thingsboard_gateway.connectors.snmp.uplink import SnmpUplinkConverter
    config = SnmpConnector.load_config(config, shown)
    if not isinstance(sample, dict) or not isinstance(sample.get("results"), dict):
        raise ConfigError("sample", "results", "expected an object of key -> the agent's result")
    devices = config["devices"]
    name = sample.get("deviceName") or (devices[0]["deviceName"] if devices else None)
    device = next((d for d in devices if d["deviceName"] == name), None)
    if device is None:
        raise ConfigError("sample", "deviceName", "no device named %r in %s" % (name, shown))
    return SnmpUplinkConverter(device).convert(sample["results"], sample.get("ts", 0))
