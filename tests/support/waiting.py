"""The one wait-until helper for tests that watch another thread."""
import time


def wait_until(predicate, timeout=10.0, what="condition"):
    """Poll `predicate` (every 10 ms) until it returns something true; return that, or
    fail the test after `timeout` s naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("%s not met in %.0f s" % (what, timeout))
        time.sleep(0.01)
