"""Schedule: due times of periodic jobs on a monotonic clock, with one policy for late
runs (a late job runs once as soon as it can; runs missed meanwhile are skipped, not
piled up; it keeps its phase when it is less than a period late). Used by the connector
kit's DeviceWorker and by the gateway's main loop."""
import time
from typing import Callable, Dict, Hashable, List, Optional


class Schedule(object):
    """Due times of periodic jobs on a monotonic clock. Pure; the owner serializes calls."""

    def __init__(self, clock=time.monotonic):
        # type: (Callable[[], float]) -> None
        self._clock = clock
        self._jobs = {}  # type: Dict[Hashable, List[float]]  key -> [period, due]

    def add(self, key, period, first=None):
        # type: (Hashable, float, Optional[float]) -> None
        """A job every `period` s, first due at `first` (default: now)."""
        self._jobs[key] = [period, self._clock() if first is None else first]

    def remove(self, key):
        # type: (Hashable) -> None
        self._jobs.pop(key, None)

    def postpone(self, key, until):
        # type: (Hashable, float) -> None
        """Set a job aside: next due at `until`."""
        if key in self._jobs:
            self._jobs[key][1] = until

    def next_due(self):
        # type: () -> Optional[float]
        return min((job[1] for job in self._jobs.values()), default=None)

    def pop_due(self):
        # type: () -> List[Hashable]
        """Keys of the jobs due now, in due order; each advanced by the late-poll policy."""
        now = self._clock()
        due = sorted((job[1], i, key) for i, (key, job) in enumerate(self._jobs.items()) if job[1] <= now)
        for missed, _, key in due:
            job = self._jobs[key]
            job[1] = missed + job[0] if missed + job[0] > now else now + job[0]
        return [key for _, _, key in due]

    def __contains__(self, key):
        return key in self._jobs
