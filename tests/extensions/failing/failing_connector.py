"""Test connectors that fail: in open(), or by their thread dying."""
from thingsboard_gateway.connectors.connector import Connector


class FailingConnector(Connector):
    """Raises in open(); counts attempts in the file named by config["counter"]."""

    def open(self):
        path = self.config.get("counter")
        if path:
            with open(path, "a") as f:
                f.write("open\n")
        raise RuntimeError("simulated failure in open()")

    def close(self):
        pass


class DyingConnector(Connector):
    """Its thread ends right after open()."""

    def open(self):
        self.start_thread(lambda: None)

    def close(self):
        self.join_threads(1)


class IdleConnector(Connector):
    """Opens and closes at once; does nothing."""

    def open(self):
        pass

    def close(self):
        pass


class StuckConnector(Connector):
    """Its thread beats once, then waits for good (a device call that never returns)."""

    def open(self):
        import threading
        self.forever = threading.Event()

        def run():
            self.heart().beat()
            self.forever.wait()
        self.start_thread(run)

    def close(self):
        self.stop_event.set()
        self.forever.set()
        self.join_threads(1)
