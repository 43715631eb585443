"""The main loop: the gateway's main thread after start-up, running its periodic jobs.

It owns the Schedule (runtime/schedule.py: one policy for late runs) and its wake-up:
anyone who needs the main thread now (a connector thread that died, a new report
period, a remote change, SIGHUP, stop) calls `wake()`; nobody else's event serves as its
doorbell. Jobs are registered by the parts that own them: `every(key, period, action)`
for periodic work, `each_round(action)` for work that says itself when it wants to run
again (supervision, the management tick). Its Heart beats every round, so a job that
does not return is seen by the liveness watch (gateway/liveness.py).
"""
import logging
import threading
import time
from typing import Any, Callable, Dict, Hashable, List, Optional

from thingsboard_gateway.runtime.liveness import Heart
from thingsboard_gateway.runtime.schedule import Schedule

log = logging.getLogger(__name__)

IDLE = 1.0  # the longest the loop sleeps (its heart's bound is far above it)

# each_round actions return the monotonic time they want to run again (None: when woken)
RoundAction = Callable[[], Optional[float]]


class MainLoop(object):
    """Runs on the thread that calls run(); every other method is callable from any thread
    except `every`/`remove`, which are for the main thread (or before run())."""

    def __init__(self, clock=time.monotonic):
        # type: (Callable[[], float]) -> None
        self._clock = clock
        self._jobs = Schedule(clock)
        self._actions = {}  # type: Dict[Hashable, Callable[[], Any]]
        self._rounds = []  # type: List[RoundAction]
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.heart = Heart("main")

    def every(self, key, period, action, first=None):
        # type: (Hashable, float, Callable[[], Any], Optional[float]) -> None
        """Run action() every `period` s, first at `first` (monotonic; default one period from now)."""
        self._jobs.add(key, period, self._clock() + period if first is None else first)
        self._actions[key] = action

    def scheduled(self, key):
        # type: (Hashable) -> bool
        return key in self._jobs

    def each_round(self, action):
        # type: (RoundAction) -> None
        self._rounds.append(action)

    def wake(self):
        """Run a round now (any thread, signal handlers too)."""
        self._wake.set()

    def stop(self):
        self._stop.set()
        self._wake.set()

    def stopping(self):
        # type: () -> bool
        return self._stop.is_set()

    def run(self):
        """Rounds until stop(): each round runs the each_round actions, then the jobs due,
        then sleeps until the next is due (at most IDLE s) or until woken."""
        self.heart.attach()
        try:
            while not self._stop.is_set():
                self.heart.beat()
                due = self._round()
                wait = IDLE if due is None else min(IDLE, max(0.0, due - self._clock()))
                self._wake.wait(wait)
                self._wake.clear()
        finally:
            self.heart.stopped()

    def _round(self):
        # type: () -> Optional[float]
        wanted = []
        for action in self._rounds:
            wanted.append(action())
        for key in self._jobs.pop_due():
            self._actions[key]()
        wanted.append(self._jobs.next_due())
        due = [when for when in wanted if when is not None]
        return min(due) if due else None
