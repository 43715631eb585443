"""The rotating log file handler that logs.json names (upstream's class name is mapped
to this one by config/logs.py). A module of its own: logging.handlers is imported only
when a logs.json asks for a handler."""
import logging.handlers
import os


class TimedRotatingLogHandler(logging.handlers.TimedRotatingFileHandler):
    """TimedRotatingFileHandler that accepts upstream's extra `maxBytes` key (0 = off)
    and creates its folder."""

    def __init__(self, filename, when="h", interval=1, backupCount=0, encoding=None, delay=False,
                 utc=False, atTime=None, maxBytes=0):
        folder = os.path.dirname(os.path.abspath(filename))
        os.makedirs(folder, exist_ok=True)
        self.max_bytes = maxBytes
        super(TimedRotatingLogHandler, self).__init__(filename, when, interval, backupCount, encoding,
                                                      delay, utc, atTime)

    def shouldRollover(self, record):
        if self.max_bytes and self.stream is not None:
            if self.stream.tell() >= self.max_bytes:
                return True
        return super(TimedRotatingLogHandler, self).shouldRollover(record)
