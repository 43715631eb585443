"""The device registry survives restarts and tolerates a damaged file."""
from thingsboard_gateway.gateway.devices import DeviceRegistry


def test_registry_is_persisted(tmp_path):
    path = str(tmp_path / "state" / "devices.json")
    registry = DeviceRegistry(path)
    assert registry.add("A", "Modbus", "meter") is True
    assert registry.add("A", "Modbus", "meter") is False      # unchanged: no rewrite
    registry.add("B", "MQTT", "")
    registry.remove("B")
    again = DeviceRegistry(path)
    assert again.items() == [("A", "Modbus", "meter")]
    assert again.owner("A") == "Modbus" and again.owner("B") is None


def test_damaged_registry_starts_empty(tmp_path):
    path = tmp_path / "devices.json"
    path.write_text("{not json")
    assert len(DeviceRegistry(str(path))) == 0
