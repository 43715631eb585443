"""DeviceNames: the names ThingsBoard knows child devices by, where a user renamed them.

A connector names a device once (its `deviceName`); ThingsBoard's user may rename the
device afterwards, and the platform tells the gateway with the RPC
`gateway_device_renamed` {"<old>": "<new>"}. From then on everything the gateway sends
for that device carries the new name, and what the platform sends to the new name
reaches the device under its own (local) name. Without renames (the usual case) every
lookup is one empty-dict check.

Thread-safe: the maps are replaced whole on a change (copy on write), so readers on the
sender's and paho's threads never take a lock.
"""
import threading
from typing import Dict, Optional

from thingsboard_gateway.storage.record import dumps as _literal  # a name as stored records carry it


class DeviceNames(object):
    """local name -> platform name, for the renamed devices only."""

    def __init__(self, renamed=None):
        # type: (Optional[Dict[str, str]]) -> None
        self._lock = threading.Lock()
        self._set(dict(renamed or {}))

    def _set(self, renamed):
        # type: (Dict[str, str]) -> None
        self._to_platform = renamed
        self._to_local = {new: old for old, new in renamed.items()}
        # The same, as JSON literals: packing renames stored records without parsing them.
        self.keys = {_literal(old): _literal(new) for old, new in renamed.items()}  # type: Dict[str, str]

    def platform(self, local):
        # type: (str) -> str
        """The name the platform knows `local` by."""
        renamed = self._to_platform
        return renamed.get(local, local) if renamed else local

    def local(self, platform):
        # type: (str) -> str
        """The connector's name of the device the platform calls `platform`."""
        renamed = self._to_local
        return renamed.get(platform, platform) if renamed else platform

    def rename(self, old, new):
        # type: (str, str) -> str
        """The platform renamed `old` (a platform name) to `new`; returns the local name."""
        with self._lock:
            local = self._to_local.get(old, old)
            renamed = dict(self._to_platform)
            if new == local:
                renamed.pop(local, None)
            else:
                renamed[local] = new
            self._set(renamed)
            return local

    def replace(self, renamed):
        # type: (Dict[str, str]) -> None
        """Every rename at once (loaded from the device registry)."""
        with self._lock:
            self._set(dict(renamed))

    def forget(self, local):
        # type: (str) -> None
        with self._lock:
            if local in self._to_platform:
                renamed = dict(self._to_platform)
                del renamed[local]
                self._set(renamed)

    def renamed(self):
        # type: () -> Dict[str, str]
        """local -> platform name of every renamed device (a copy)."""
        return dict(self._to_platform)
