"""DeviceRegistry: which connector owns which device, and the name ThingsBoard knows it by
when a user renamed it there (platform/names.py), persisted under the storage folder."""
import json
import logging
import os
import threading
from typing import Dict, List, Optional, Tuple

from thingsboard_gateway.platform.names import DeviceNames

log = logging.getLogger(__name__)


class DeviceRegistry(object):
    """device name -> (connector name, device type). Thread-safe. Changes are written to
    `path` atomically (temp file, fsync, rename) by `save()`, which the service's loop calls
    every SAVE_PERIOD s and at shutdown: never on a connector's thread, where a new device's
    fsync (30 ms on a slow SD card) held every device's data behind it. A device first seen
    in the last second before a crash is known again from its next message."""

    def __init__(self, path, names=None):
        # type: (Optional[str], Optional[DeviceNames]) -> None
        self._path = path
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()  # one writer of the file at a time
        self._devices = {}  # type: Dict[str, Tuple[str, str]]
        self.names = names or DeviceNames()
        self._changed = False
        self._load()

    def _load(self):
        if not self._path or not os.path.exists(self._path):
            return
        try:
            with open(self._path, encoding="utf-8") as f:
                raw = json.load(f)
            renamed = {}
            for name, entry in raw.items():
                if "connector" in entry:  # else a renamed device not connected now
                    self._devices[name] = (entry["connector"], entry.get("type", "default"))
                if isinstance(entry.get("platformName"), str):
                    renamed[name] = entry["platformName"]
            self.names.replace(renamed)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            log.warning("Device registry %s is unreadable (%s); starting empty", self._path, e)
            self._devices = {}

    def save(self):
        """Write the registry if it changed since the last save (the main loop's job; an
        RPC that renames or deletes a device saves at once)."""
        with self._save_lock:
            self._save()

    def _save(self):
        with self._lock:
            if not self._changed:
                return
            self._changed = False
            data = {name: {"connector": c, "type": t} for name, (c, t) in self._devices.items()}
            for name, platform_name in self.names.renamed().items():
                data.setdefault(name, {})["platformName"] = platform_name
        if not self._path:
            return
        tmp = self._path + ".tmp"
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self._path)), exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(data, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._path)
        except OSError as e:
            log.error("Cannot save device registry %s: %s", self._path, e)
            with self._lock:
                self._changed = True

    def known(self, name, connector, device_type):
        # type: (str, str, str) -> bool
        """True when the device is recorded as it is (a dict read: no lock)."""
        return self._devices.get(name) == (connector, device_type or "default")

    def add(self, name, connector, device_type):
        # type: (str, str, str) -> bool
        """Record the device; True if it is new or changed."""
        entry = (connector, device_type or "default")
        with self._lock:
            if self._devices.get(name) == entry:
                return False
            self._devices[name] = entry
            self._changed = True
            return True

    def remove(self, name, deleted=False):
        # type: (str, bool) -> bool
        """The device is gone (its connector said so); `deleted`: on the platform, so its
        platform name is forgotten too (a device that comes back keeps its new name)."""
        with self._lock:
            if deleted and name in self.names.renamed():
                self.names.forget(name)
                self._changed = True
            if self._devices.pop(name, None) is None:
                return False
            self._changed = True
            return True

    def rename(self, old, new):
        # type: (str, str) -> Optional[str]
        """ThingsBoard renamed the device it knew as `old` to `new`: the local name of the
        device, or None when the gateway does not know it."""
        with self._lock:
            local = self.names.local(old)
            if local not in self._devices and local == old:
                return None
            self.names.rename(old, new)
            self._changed = True
            return local

    def owner(self, name):
        # type: (str) -> Optional[str]
        with self._lock:
            entry = self._devices.get(name)
            return entry[0] if entry else None

    def items(self):
        # type: () -> List[Tuple[str, str, str]]
        """[(device, connector, type)]"""
        with self._lock:
            return [(name, c, t) for name, (c, t) in self._devices.items()]

    def __len__(self):
        with self._lock:
            return len(self._devices)
