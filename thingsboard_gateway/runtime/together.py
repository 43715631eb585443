"""Work that many callbacks in a row ask for, done once after the last of them.

The storage writer runs the on-commit callbacks of a whole group of records in a row
(`with together(): ...`); a callback that only needs something done at some point after
it (the MQTT connector sending the PUBACKs its messages now allow) says `after(flush)`,
and each distinct `flush` runs once when the block ends, on the same thread. Outside such
a block `after(flush)` runs it at once. Thread-local: other threads are not affected.
"""
import logging
import threading
from typing import Callable, List

log = logging.getLogger(__name__)

_state = threading.local()


class together(object):
    """A block at whose end the work asked for with after() runs (nested: the outermost)."""

    __slots__ = ("_outer",)

    def __enter__(self):
        self._outer = getattr(_state, "pending", None)
        if self._outer is None:
            _state.pending = []
        return self

    def __exit__(self, *exc):
        if self._outer is not None:
            return False
        pending = _state.pending  # type: List[Callable[[], None]]
        _state.pending = None
        for flush in pending:
            try:
                flush()
            except Exception:
                log.exception("deferred %r failed", flush)
        return False


def after(flush):
    # type: (Callable[[], None]) -> None
    """Run `flush` at the end of this thread's together() block (once, however often it
    was asked for), or now when there is none."""
    pending = getattr(_state, "pending", None)
    if pending is None:
        flush()
    elif flush not in pending:
        pending.append(flush)
