"""The watch over the threads the data path needs, and the systemd watchdog it feeds.

The sender, the storage writer and the main loop each beat a Heart (runtime/liveness.py)
once per round; every wait in those loops is bounded (0.5 to 1 s), so a heart silent for
longer than `bound` seconds (supervision.dataPathStuckMs, 60 s by default) means its
thread is stuck in a call that does not return. The `liveness` thread looks once a
second: a stuck thread is logged once with its stack; while any is stuck the systemd
watchdog is not fed, so that systemd restarts the service (WatchdogSec) as the last
resort; when it moves again that is logged and feeding resumes. Connector threads are
the supervisor's (gateway/supervisor.py): a stuck connector is restarted, not the gateway.
"""
import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from thingsboard_gateway.runtime.liveness import Heart, stack_of

log = logging.getLogger(__name__)

PERIOD = 1.0


class Watch(object):
    """Owns the `liveness` thread. notifier: notify(state) and watchdog_interval (seconds
    between pings, None without a systemd watchdog)."""

    def __init__(self, notifier, bound, stats=None, clock=time.monotonic, period=PERIOD):
        # type: (Any, float, Any, Callable[[], float], float) -> None
        self.notifier = notifier
        self.bound = bound
        self._stats = stats
        self._clock = clock
        self._period = period
        self._hearts = []  # type: List[Heart]
        self._stuck = {}  # type: Dict[str, float]  name -> when it was found stuck
        self._stop = threading.Event()
        self._thread = None  # type: Optional[threading.Thread]
        self.pings = 0

    def add(self, heart):
        # type: (Heart) -> None
        self._hearts.append(heart)

    def stuck(self):
        # type: () -> List[str]
        """The names of the threads stuck at the last check."""
        return sorted(self._stuck)

    def check(self):
        # type: () -> bool
        """Look at every heart (the liveness thread; tests call it): True when none is
        stuck. Each newly stuck thread is logged once with its stack."""
        now = self._clock()
        for heart in self._hearts:
            silent = heart.silent_for(now)
            stuck = silent is not None and silent > self.bound
            if stuck and heart.name not in self._stuck:
                self._stuck[heart.name] = now
                if self._stats is not None:
                    self._stats.add("threads_stuck", 1)
                log.error("Thread %s made no progress for %.0f s (its bound: %.0f s); the systemd watchdog is no "
                          "longer fed, so systemd restarts the gateway unless it moves again. Where it is (most "
                          "recent call last):\n%s", heart.name, silent, self.bound, stack_of(heart) or "(ended)")
            elif not stuck and heart.name in self._stuck:
                log.warning("Thread %s moves again after %.0f s", heart.name, now - self._stuck.pop(heart.name))
        return not self._stuck

    def start(self):
        self._thread = threading.Thread(target=self._run, name="liveness")
        self._thread.start()

    def stop(self, timeout=2.0):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self):
        interval = self.notifier.watchdog_interval
        next_ping = self._clock()
        while not self._stop.wait(self._period):
            healthy = self.check()
            if interval and healthy and self._clock() >= next_ping:
                self.notifier.notify("WATCHDOG=1")
                self.pings += 1
                next_ping = self._clock() + interval
