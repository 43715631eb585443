"""The public Converter base class: pure conversion between device data and ThingsBoard's.

Uplink output format (the "converted data" handed to gateway.send_to_storage):
  {"deviceName": str, "deviceType": str,
   "telemetry": [{"ts": ms, "values": {key: value}}] or [{key: value}],
   "attributes": {key: value}}
"""
from abc import ABC, abstractmethod
from typing import Any


class Converter(ABC):
    """`convert(config, data)` with no I/O, so it can be tested with recorded samples."""

    def __init__(self, config=None):
        self.config = config or {}

    @abstractmethod
    def convert(self, config, data):
        # type: (Any, Any) -> Any
        """Return the converted data (or None when there is nothing to send)."""
