"""Device activity bookkeeping (upstream's checkingDeviceActivity) on a driven clock."""
from thingsboard_gateway.gateway.activity import DeviceActivity
from tests.support.clock import Clock


def test_a_silent_device_expires_once_and_its_next_data_reconnects_it():
    clock = Clock(1000.0)
    activity = DeviceActivity(60, clock)
    assert activity.seen("A") is False
    assert activity.seen("B") is False
    clock.now += 59
    activity.seen("B")
    assert activity.expired() == []
    clock.now += 2                               # A silent for 61 s, B for 2 s
    assert activity.expired() == ["A"]
    assert activity.expired() == []              # reported once per silence
    assert activity.is_inactive("A") and not activity.is_inactive("B")
    assert activity.seen("A") is True            # back: connect it again
    assert activity.seen("A") is False
    clock.now += 61
    assert sorted(activity.expired()) == ["A", "B"]


def test_a_removed_device_is_no_longer_watched():
    clock = Clock(1000.0)
    activity = DeviceActivity(10, clock)
    activity.seen("A")
    activity.forget("A")
    clock.now += 100
    assert activity.expired() == [] and activity.is_inactive("A") is None
