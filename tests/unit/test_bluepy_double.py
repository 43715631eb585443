"""The bluepy double (tests/support/fake_bluepy) against the real bluepy 1.3.0: the same
classes, constants and method signatures for everything the BLE connector calls, so that
the connector's tests mean something on a board."""
import importlib.util
import inspect
import os

import pytest

DOUBLE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "support", "fake_bluepy", "bluepy", "btle.py")

# What thingsboard_gateway/connectors/ble calls (class -> methods), and what the tests use.
SURFACE = {
    "Peripheral": ["__init__", "connect", "disconnect", "withDelegate", "setDelegate", "getCharacteristics",
                   "readCharacteristic", "writeCharacteristic", "waitForNotifications"],
    "Characteristic": ["read", "write", "getHandle", "supportsRead", "getDescriptors", "propertiesToString"],
    "Scanner": ["__init__", "scan", "withDelegate"],
    "ScanEntry": ["__init__", "getScanData", "getValueText", "getValue", "getDescription"],
    "DefaultDelegate": ["__init__", "handleNotification", "handleDiscovery"],
    "UUID": ["__init__", "getCommonName"],
    "BTLEException": ["__init__"],
}


@pytest.fixture(scope="module")
def modules():
    try:
        from bluepy import btle as real
    except ImportError as e:
        pytest.skip("bluepy is not installed here (it needs libglib2.0-dev to build): %s" % e)
    if real.__file__ == DOUBLE:
        pytest.skip("bluepy here is the double itself")
    spec = importlib.util.spec_from_file_location("fake_btle", DOUBLE)
    double = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(double)
    return real, double


@pytest.mark.parametrize("cls", sorted(SURFACE))
def test_same_signatures(modules, cls):
    real, double = modules
    for method in SURFACE[cls]:
        expected = inspect.signature(getattr(getattr(real, cls), method))
        assert inspect.signature(getattr(getattr(double, cls), method)) == expected, "%s.%s" % (cls, method)


def test_same_exceptions_and_constants(modules):
    real, double = modules
    for name in ("BTLEDisconnectError", "BTLEInternalError"):
        assert [c.__name__ for c in getattr(double, name).__mro__] == [c.__name__ for c in getattr(real, name).__mro__]
    assert (double.ADDR_TYPE_PUBLIC, double.ADDR_TYPE_RANDOM) == (real.ADDR_TYPE_PUBLIC, real.ADDR_TYPE_RANDOM)


def test_helper_attribute_and_uuid_text(modules):
    """The connector ends a hung call by killing Peripheral._helper (bluepy's helper
    process); a Peripheral made without an address has none yet, in both."""
    real, double = modules
    assert real.Peripheral()._helper is None and double.Peripheral()._helper is None
    for text in ("2A00", "226CAA55-6476-4566-7562-66734470666D"):
        assert str(double.UUID(text)) == str(real.UUID(text))
