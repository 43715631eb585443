"""A double of exactly the bluepy.btle surface the BLE connector uses, with scripted
peripherals: values to read, notifications, disconnects, devices out of range and
peripherals that hang (until their helper is killed, as with the real bluepy-helper).
Writes are recorded. tests/unit/test_bluepy_double.py compares its classes and method
signatures with the real bluepy where that installs.

In-process tests use WORLD directly. A gateway process gets this package first on
PYTHONPATH and its world from the JSON file named by $TB_GW_FAKE_BLUEPY:
  {"devices": {"MAC": {"characteristics": {"uuid": "hex", ...},
                       "notify": {"uuid": {"period": s, "values": ["hex", ...]}}}},
   "writes": "path of a file each write is appended to as a JSON line"}
"""
import binascii
import json
import os
import threading
import time

ADDR_TYPE_PUBLIC = "public"
ADDR_TYPE_RANDOM = "random"
BASE = "-0000-1000-8000-00805f9b34fb"


class BTLEException(Exception):
    def __init__(self, message, resp_dict=None):
        self.message = message
        self.estat = resp_dict.get("estat", None) if resp_dict else None
        Exception.__init__(self, message)


class BTLEDisconnectError(BTLEException):
    pass


class BTLEInternalError(BTLEException):
    pass


class UUID(object):
    def __init__(self, val, commonName=None):
        if isinstance(val, UUID):
            val = str(val)
        if isinstance(val, int):
            val = "%08x%s" % (val, BASE)
        text = str(val).lower()
        self.binVal = binascii.a2b_hex(text.replace("-", "").encode()) if len(text) > 8 else None
        self._text = "0000%s%s" % (text, BASE) if len(text) == 4 else text
        self.commonName = commonName

    def __str__(self):
        return self._text

    def __eq__(self, other):
        return str(self) == str(UUID(other))

    def __hash__(self):
        return hash(self._text)

    def getCommonName(self):
        return self.commonName or self._text


class DefaultDelegate(object):
    def __init__(self):
        pass

    def handleNotification(self, cHandle, data):
        pass

    def handleDiscovery(self, scanEntry, isNewDev, isNewData):
        pass


class FakeDevice(object):
    """A scripted peripheral. hang: "connect", "read" or "notify" blocks until the helper is killed."""

    def __init__(self, mac, characteristics, notify=None):
        self.mac = mac.upper()
        self.values = {str(UUID(u)): v for u, v in characteristics.items()}  # uuid -> bytes
        self.handles = {u: 0x10 + 3 * i for i, u in enumerate(sorted(self.values))}
        self.notify = {str(UUID(u)): s for u, s in (notify or {}).items()}  # uuid -> {"period", "values"}
        self.in_range = True
        self.hang = None
        self.hanging = None  # what a call of it blocks in now ("read", ...), for tests to wait on
        self.read_delay = 0.0
        self.drop_after_reads = None  # disconnect on the n-th read
        self.queue = []  # (uuid, bytes) notifications waiting
        self.reads = 0


class FakeHelper(object):
    """Stands for the bluepy-helper process of one Peripheral."""

    def __init__(self, world):
        self.world = world
        self.killed = threading.Event()
        world.helpers_started += 1

    def poll(self):
        return -9 if self.killed.is_set() else None

    def kill(self):
        if not self.killed.is_set():
            self.killed.set()
            self.world.helpers_ended += 1

    def wait(self, timeout=None):
        return -9


class World(object):
    def __init__(self):
        self.devices = {}  # MAC -> FakeDevice
        self.writes = []  # (MAC, uuid, bytes, withResponse)
        self.helpers_started = 0
        self.helpers_ended = 0
        self.writes_file = None
        self.lock = threading.Lock()

    def add(self, mac, characteristics, notify=None):
        device = FakeDevice(mac, characteristics, notify)
        self.devices[device.mac] = device
        return device

    def live_helpers(self):
        return self.helpers_started - self.helpers_ended

    def record_write(self, mac, uuid, value, with_response):
        self.writes.append((mac, uuid, value, with_response))
        if self.writes_file:
            with open(self.writes_file, "a") as f:
                f.write(json.dumps([mac, uuid, value.hex(), with_response]) + "\n")


WORLD = World()


class Characteristic(object):
    def __init__(self, *args):
        self.peripheral, self.uuid, self.handle = args
        self.properties = 0x1A

    def read(self):
        return self.peripheral.readCharacteristic(self.handle)

    def write(self, val, withResponse=False):
        return self.peripheral.writeCharacteristic(self.handle, val, withResponse)

    def getHandle(self):
        return self.handle

    def supportsRead(self):
        return True

    def getDescriptors(self, forUUID=None, hndEnd=0xFFFF):
        return []

    def propertiesToString(self):
        return "READ WRITE NOTIFY"


class Peripheral(object):
    def __init__(self, deviceAddr=None, addrType=ADDR_TYPE_PUBLIC, iface=None):
        self._helper = None
        self.delegate = DefaultDelegate()
        self.device = None
        self.subscribed = set()
        self._next_notify = {}
        if deviceAddr is not None:
            self.connect(deviceAddr, addrType, iface)

    def _check(self):
        if self._helper is None or self._helper.killed.is_set():
            raise BTLEInternalError("Helper exited")

    def _block(self, what):
        if self.device is not None and self.device.hang == what or self.device is None and what == "connect":
            if self.device is not None:
                self.device.hanging = what
            self._helper.killed.wait(60)  # a hung peripheral: only killing the helper ends the call
            raise BTLEInternalError("Helper exited")

    def connect(self, addr, addrType=ADDR_TYPE_PUBLIC, iface=None):
        if len(addr.split(":")) != 6:
            raise ValueError("Expected MAC address, got %s" % repr(addr))
        self._helper = FakeHelper(WORLD)
        device = WORLD.devices.get(addr.upper())
        if device is None or not device.in_range:
            self._helper.kill()
            self._helper = None
            raise BTLEDisconnectError("Failed to connect to peripheral %s, addr type: %s" % (addr, addrType))
        self.device = device
        self._block("connect")

    def disconnect(self):
        if self._helper is None:
            return
        self._check()
        self._helper.kill()
        self._helper = None

    def withDelegate(self, delegate_):
        self.delegate = delegate_
        return self

    def setDelegate(self, delegate_):
        return self.withDelegate(delegate_)

    def getCharacteristics(self, startHnd=1, endHnd=0xFFFF, uuid=None):
        self._check()
        return [Characteristic(self, UUID(u), h) for u, h in sorted(self.device.handles.items())
                if uuid is None or UUID(uuid) == UUID(u)]

    def _uuid_of(self, handle):
        return next((u for u, h in self.device.handles.items() if h == handle), None)

    def readCharacteristic(self, handle):
        self._check()
        self._block("read")
        device = self.device
        device.reads += 1
        if device.drop_after_reads is not None and device.reads >= device.drop_after_reads:
            device.drop_after_reads = None
            raise BTLEDisconnectError("Device disconnected")
        if device.read_delay:
            time.sleep(device.read_delay)
        return device.values[self._uuid_of(handle)]

    def writeCharacteristic(self, handle, val, withResponse=False):
        self._check()
        uuid = self._uuid_of(handle - 1)
        if uuid is not None and val == b"\x01\x00":
            self.subscribed.add(handle - 1)
            return {"rsp": ["wr"]}
        uuid = self._uuid_of(handle)
        if uuid is None:
            raise BTLEException("Invalid handle", {"estat": [1]})
        WORLD.record_write(self.device.mac, uuid, bytes(val), withResponse)
        return {"rsp": ["wr"]}

    def waitForNotifications(self, timeout):
        self._check()
        self._block("notify")
        device = self.device
        now = time.monotonic()
        for uuid, script in device.notify.items():  # scripted streams: one value every period
            due = self._next_notify.setdefault(uuid, now)
            if now >= due and script.get("values"):
                self._next_notify[uuid] = now + script.get("period", 1.0)
                index = script.setdefault("_index", 0)
                script["_index"] = index + 1
                device.queue.append((uuid, bytes.fromhex(script["values"][index % len(script["values"])])))
        while device.queue:
            uuid, data = device.queue.pop(0)
            if uuid == "disconnect":
                raise BTLEDisconnectError("Device disconnected")
            handle = device.handles[uuid]
            if handle in self.subscribed:
                self.delegate.handleNotification(handle, data)
                return True
        if timeout:
            self._helper.killed.wait(timeout)
        return False


class ScanEntry(object):
    def __init__(self, addr, iface):
        self.addr = addr
        self.iface = iface
        self.addrType = ADDR_TYPE_PUBLIC
        self.rssi = -60
        self.connectable = True
        self.scanData = {9: "Fake %s" % addr}

    def getScanData(self):
        return [(sdid, "name", value) for sdid, value in self.scanData.items()]

    def getValueText(self, sdid):
        return self.scanData.get(sdid)

    def getValue(self, sdid):
        return self.scanData.get(sdid)

    def getDescription(self, sdid):
        return "Complete Local Name" if sdid == 9 else "0x%02X" % sdid


class Scanner(object):
    def __init__(self, iface=0):
        self.iface = iface
        self.delegate = DefaultDelegate()

    def withDelegate(self, delegate_):
        self.delegate = delegate_
        return self

    def scan(self, timeout=10, passive=False):
        time.sleep(min(timeout, 0.05))
        return [ScanEntry(d.mac, self.iface) for d in WORLD.devices.values() if d.in_range]


def _load(path):
    with open(path) as f:
        script = json.load(f)
    for mac, spec in script.get("devices", {}).items():
        WORLD.add(mac, {u: bytes.fromhex(v) for u, v in spec.get("characteristics", {}).items()},
                  spec.get("notify"))
    WORLD.writes_file = script.get("writes")


if os.environ.get("TB_GW_FAKE_BLUEPY"):
    _load(os.environ["TB_GW_FAKE_BLUEPY"])
