"""Delivery futures: `send_to_storage` returns a Future resolved when the platform
acknowledged every message that carried the data.

A record carries a token (a per-process prefix and a counter) into storage; the sender
resolves the token's future after the PUBACKs. Futures are held weakly: one its caller
dropped costs nothing. They live in the process: records read back from file storage
after a restart have nobody waiting (their tokens find no future).
"""
import itertools
import os
import threading
import time
import weakref
from typing import Any, NamedTuple, Optional, Type

from thingsboard_gateway.connectors.connector import DeliveryError

DeliveryResult = NamedTuple("DeliveryResult", [("delivered_at", float), ("messages", int)])


class DeliveryTracker(object):
    """token -> Future, thread-safe."""

    def __init__(self):
        self._prefix = "%x%x" % (os.getpid(), int(time.time() * 1000) & 0xFFFFFF)
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._futures = weakref.WeakValueDictionary()  # type: weakref.WeakValueDictionary
        self._future = None  # type: Any  concurrent.futures.Future

    def new(self, wanted=True):
        # type: (bool) -> tuple
        """(token, future) for a new record; ("", None) when nobody wants the future (a
        caller that ignores it: a Future and its weak reference cost 14 us on Python 3.7)."""
        if not wanted:
            return "", None
        token = "%s.%d" % (self._prefix, next(self._counter))
        kind = self._future
        if kind is None:  # imported at the first future asked for, not at start (2 ms on Python 3.7)
            import concurrent.futures
            kind = self._future = concurrent.futures.Future
        future = kind()
        future.set_running_or_notify_cancel()
        with self._lock:
            self._futures[token] = future
        return token, future

    def _pop(self, token):
        # type: (str) -> Optional[Any]  (a concurrent.futures.Future)
        if not token:
            return None
        with self._lock:
            return self._futures.pop(token, None)

    def delivered(self, token, messages):
        # type: (str, int) -> None
        future = self._pop(token)
        if future is not None and not future.done():
            future.set_result(DeliveryResult(time.time(), messages))

    def failed(self, token, reason, kind=DeliveryError):
        # type: (str, str, Type[DeliveryError]) -> None
        future = self._pop(token)
        if future is not None and not future.done():
            future.set_exception(kind(reason))

    def __len__(self):
        with self._lock:
            return len(self._futures)

