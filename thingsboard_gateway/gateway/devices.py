"""DeviceRegistry: which connector owns which device, persisted under the storage folder."""
import json
import logging
import os
import threading
from typing import Dict, List, Optional, Tuple

log = logging.getLogger(__name__)


class DeviceRegistry(object):
    """device name -> (connector name, device type). Thread-safe. Changes are written to
    `path` atomically (temp file, fsync, rename) by `save()`, which the service's loop calls
    every SAVE_PERIOD s and at shutdown: never on a connector's thread, where a new device's
    fsync (30 ms on a slow SD card) held every device's data behind it. A device first seen
    in the last second before a crash is known again from its next message."""

    def __init__(self, path):
        # type: (Optional[str]) -> None
        self._path = path
        self._lock = threading.Lock()
        self._devices = {}  # type: Dict[str, Tuple[str, str]]
        self._changed = False
        self._load()

    def _load(self):
        if not self._path or not os.path.exists(self._path):
            return
        try:
            with open(self._path, encoding="utf-8") as f:
                raw = json.load(f)
            for name, entry in raw.items():
                self._devices[name] = (entry["connector"], entry.get("type", "default"))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            log.warning("Device registry %s is unreadable (%s); starting empty", self._path, e)
            self._devices = {}

    def save(self):
        """Write the registry if it changed since the last save (one thread calls this)."""
        with self._lock:
            if not self._changed:
                return
            self._changed = False
            data = {name: {"connector": c, "type": t} for name, (c, t) in self._devices.items()}
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

    def add(self, name, connector, device_type):
        # type: (str, str, str) -> bool
        """Record the device; True if it is new or changed."""
        with self._lock:
            entry = (connector, device_type or "default")
            if self._devices.get(name) == entry:
                return False
            self._devices[name] = entry
            self._changed = True
            return True

    def remove(self, name):
        # type: (str) -> bool
        with self._lock:
            if self._devices.pop(name, None) is None:
                return False
            self._changed = True
            return True

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
