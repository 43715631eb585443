"""Liveness of loops: a thread shows that it goes round by beating its Heart.

A loop whose every wait is bounded (a queue, an event or a condition with a timeout)
beats once per round: a heart that has not beaten for longer than its bound means the
thread is stuck in something that does not return (an fsync on a dying card, a device
call, a custom converter). A heart that never beat is not watched (a loop that does not
take part); `stopped()` takes it out again when its loop ends.

Hearts are written by their own thread and read by a watcher: a float assignment, no
lock (the watcher only needs a recent value). The clock is injected. A wait that is
progress, not a hang (a producer held back by a full queue: backpressure), beats the
waiting thread's own heart with `beat_current()`.
"""
import sys
import threading
import time
import traceback
from typing import Callable, Optional

_current = threading.local()  # .heart: the heart attached on this thread


class Heart(object):
    """One loop's progress mark. beat() costs one clock read."""

    __slots__ = ("name", "last", "ident", "_clock")

    def __init__(self, name, clock=time.monotonic):
        # type: (str, Callable[[], float]) -> None
        self.name = name
        self.last = None  # type: Optional[float]  when it last beat; None: not watched
        self.ident = None  # type: Optional[int]  its thread, for the stack
        self._clock = clock

    def attach(self):
        """On the loop's own thread: remember the thread (for its stack) without watching
        yet; beat_current() on this thread beats this heart."""
        self.ident = threading.get_ident()
        _current.heart = self

    def beat(self):
        self.last = self._clock()

    def stopped(self):
        """The loop ended: no longer watched."""
        self.last = None

    def silent_for(self, now):
        # type: (float) -> Optional[float]
        """Seconds since the last beat at `now`, or None when not watched."""
        last = self.last
        return None if last is None else now - last


def beat_current():
    """Beat the calling thread's heart, if it has one: for waits that are progress."""
    heart = getattr(_current, "heart", None)
    if heart is not None:
        heart.beat()


def stack_of(heart):
    # type: (Heart) -> str
    """Where the heart's thread is now, most recent call last ('' when it has ended)."""
    frame = sys._current_frames().get(heart.ident) if heart.ident is not None else None
    if frame is None:
        return ""
    return "".join(traceback.format_stack(frame)).rstrip()
