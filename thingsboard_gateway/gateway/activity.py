"""Device activity (upstream's `checkingDeviceActivity`): a device that sent nothing for
`inactivityTimeoutSeconds` is disconnected on the platform (v1/gateway/disconnect) and
connected again with its next data. Pure bookkeeping with an injected clock; the
gateway service publishes."""
import threading
import time
from typing import Callable, Dict, List, Optional


class DeviceActivity(object):
    """Thread-safe: connectors' threads report data (`seen`), the main thread checks."""

    def __init__(self, timeout, clock=time.monotonic):
        # type: (float, Callable[[], float]) -> None
        self._timeout = timeout
        self.timeout = timeout  # seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._last = {}  # type: Dict[str, float]  device -> last data (monotonic s)
        self._inactive = set()  # type: set  devices disconnected for silence

    def seen(self, device):
        # type: (str) -> bool
        """The device sent data now; True when it had been disconnected for silence (so
        it must be connected again)."""
        with self._lock:
            self._last[device] = self._clock()
            if device in self._inactive:
                self._inactive.discard(device)
                return True
            return False

    def expired(self):
        # type: () -> List[str]
        """Devices silent for longer than the timeout, not reported before; each is
        reported once per silence."""
        deadline = self._clock() - self._timeout
        with self._lock:
            out = [d for d, at in self._last.items() if at < deadline and d not in self._inactive]
            self._inactive.update(out)
            return out

    def forget(self, device):
        # type: (str) -> None
        """The device was removed (its connector said so): no longer watched."""
        with self._lock:
            self._last.pop(device, None)
            self._inactive.discard(device)

    def is_inactive(self, device):
        # type: (str) -> Optional[bool]
        with self._lock:
            return device in self._inactive if device in self._last else None
