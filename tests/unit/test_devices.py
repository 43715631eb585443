"""The device registry survives restarts and tolerates a damaged file."""
from thingsboard_gateway.gateway.devices import DeviceRegistry


def test_registry_is_persisted(tmp_path):
    path = str(tmp_path / "state" / "devices.json")
    registry = DeviceRegistry(path)
    assert registry.add("A", "Modbus", "meter") is True
    assert registry.add("A", "Modbus", "meter") is False      # unchanged: no rewrite
    registry.add("B", "MQTT", "")
    registry.remove("B")
    registry.save()
    again = DeviceRegistry(path)
    assert again.items() == [("A", "Modbus", "meter")]
    assert again.owner("A") == "Modbus" and again.owner("B") is None


def test_damaged_registry_starts_empty(tmp_path):
    path = tmp_path / "devices.json"
    path.write_text("{not json")
    assert len(DeviceRegistry(str(path))) == 0


def test_adding_a_device_writes_nothing_until_saved(tmp_path, monkeypatch):
    """A new device costs its connector's thread no file write and no fsync (30 ms on a slow
    SD card, per device): the service's loop saves the registry, once for many devices."""
    import os
    fsyncs = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: fsyncs.append(fd) or real(fd))
    path = tmp_path / "devices.json"
    registry = DeviceRegistry(str(path))
    for i in range(50):
        assert registry.add("Sensor-%d" % i, "MQTT", "sensor") is True
    assert not path.exists() and fsyncs == []
    registry.save()
    registry.save()  # nothing changed since: no second write
    assert len(fsyncs) == 1 and len(DeviceRegistry(str(path))) == 50


def test_a_failed_save_is_tried_again(tmp_path):
    blocker = tmp_path / "state"
    blocker.write_text("a file where the folder should be")
    registry = DeviceRegistry(str(blocker / "devices.json"))
    registry.add("A", "Modbus", "meter")
    registry.save()  # logged, not raised
    blocker.unlink()
    registry.save()
    assert DeviceRegistry(str(blocker / "devices.json")).owner("A") == "Modbus"
