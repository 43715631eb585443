"""Rate-limited reporting of bad device data: counted always, logged at most once per
interval per kind, with a sample of the payload."""
import logging
import threading
import time
from typing import Callable, Dict, Tuple

INTERVAL = 30.0
SAMPLE = 200


class FailureLog(object):
    """count(kind, message, sample): counts; logs when that kind was quiet for INTERVAL."""

    def __init__(self, logger, clock=time.monotonic, interval=INTERVAL):
        # type: (logging.Logger, Callable[[], float], float) -> None
        self._log = logger
        self._clock = clock
        self._interval = interval
        self._lock = threading.Lock()
        self.counts = {}  # type: Dict[str, int]
        self._last = {}  # type: Dict[str, Tuple[float, int]]  kind -> (logged at, count then)

    def count(self, kind, message, sample=None):
        # type: (str, str, object) -> None
        now = self._clock()
        with self._lock:
            total = self.counts.get(kind, 0) + 1
            self.counts[kind] = total
            logged_at, logged_count = self._last.get(kind, (None, 0))
            if logged_at is not None and now - logged_at < self._interval:
                return
            self._last[kind] = (now, total)
        suppressed = total - logged_count - 1 if logged_at is not None else 0
        text = message
        if sample is not None:
            shown = sample if isinstance(sample, str) else repr(sample)
            text += "; payload: %s" % (shown[:SAMPLE] + ("..." if len(shown) > SAMPLE else ""))
        if suppressed:
            text += " (%d more like it since the last report)" % suppressed
        self._log.warning(text)

    def snapshot(self):
        # type: () -> Dict[str, int]
        with self._lock:
            return dict(self.counts)
