"""The one fake clock of the tests: monotonic seconds that move only when told."""


class Clock(object):
    """clock() -> now; `now` is set or advanced by the test. With `step`, every reading
    also moves it on by `step` seconds (work that seems to take that long)."""

    def __init__(self, now=1000.0, step=0.0):
        self.now = now
        self.step = step

    def __call__(self):
        now = self.now
        self.now += self.step
        return now

    def advance(self, seconds):
        self.now += seconds
