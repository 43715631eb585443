"""The one wait-until helper for tests that watch another thread."""
import time


def wait_until(predicate, timeout=10.0, what="condition", interval=0.01):
    """Poll `predicate` (every `interval` s) until it returns something true; return that,
    or fail the test after `timeout` s naming `what`. A predicate may act too (publish a
    probe, try to connect) before it looks: then give it an interval that suits the act."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("%s not met in %.0f s" % (what, timeout))
        time.sleep(interval)
