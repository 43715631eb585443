"""Logging set-up from logs.json (dictConfig), compatible with upstream's file.

Upstream's logs.json names its own rotating handler class and category loggers
(`service`, `tb_connection`, `storage`, `connector`, `converter`, `extension`). We map
the class to `TimedRotatingLogHandler` below and route our module loggers to the
handlers and levels of the matching category, so an upstream file works unchanged.
"""
import copy
import logging
import logging.config
import logging.handlers
import os
from typing import Any, Dict

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.loader import read_json

UPSTREAM_HANDLER = "thingsboard_gateway.tb_utility.tb_rotating_file_handler.TimedRotatingFileHandler"
OUR_HANDLER = "thingsboard_gateway.config.logs.TimedRotatingLogHandler"

# Our logger prefix -> upstream category logger whose handlers and level it takes.
CATEGORIES = [
    ("thingsboard_gateway", "service"),
    ("thingsboard_gateway.platform", "tb_connection"),
    ("thingsboard_gateway.storage", "storage"),
    ("thingsboard_gateway.connectors", "connector"),
    ("thingsboard_gateway.conversion", "converter"),
    ("extensions", "extension"),
]

DEFAULT_FORMAT = "%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s"
# Protocol libraries log every request at INFO (python-opcua: 2-3 lines per request, tens
# of thousands at start-up with a big address space): without a logs.json they are kept
# at WARNING; a logs.json that names them decides for itself.
THIRD_PARTY = ("opcua", "pymodbus", "paho", "bluepy", "serial")


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


def _prepare(config):
    # type: (Dict[str, Any]) -> Dict[str, Any]
    config = copy.deepcopy(config)
    for handler in (config.get("handlers") or {}).values():
        if not isinstance(handler, dict):
            continue
        if handler.get("class") == UPSTREAM_HANDLER:
            handler["class"] = OUR_HANDLER
        filename = handler.get("filename")
        if isinstance(filename, str):
            os.makedirs(os.path.dirname(os.path.abspath(filename)), exist_ok=True)
    return config


def _route_categories():
    manager = logging.Logger.manager.loggerDict
    for prefix, category in CATEGORIES:
        if category not in manager:
            continue
        source = logging.getLogger(category)
        target = logging.getLogger(prefix)
        for handler in list(target.handlers):
            target.removeHandler(handler)
        for handler in source.handlers:
            target.addHandler(handler)
        target.setLevel(source.level)
        target.propagate = not source.handlers


def setup_logging(config_folder, level=None):
    # type: (str, Any) -> str
    """Configure logging from `<config_folder>/logs.json` if present, else a console
    default at INFO. Returns what was used (for the start-up log line)."""
    path = os.path.join(config_folder, "logs.json")
    if os.path.isfile(path):
        raw = read_json(path, "logs.json")
        try:
            logging.config.dictConfig(_prepare(raw))
        except (ValueError, TypeError, AttributeError, ImportError) as e:
            raise ConfigError("logs.json", "", "invalid logging configuration: %s" % e)
        _route_categories()
        used = path
    else:
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(DEFAULT_FORMAT))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        for name in THIRD_PARTY:
            logging.getLogger(name).setLevel(logging.WARNING)
        used = "console (no logs.json)"
    if level is not None:
        logging.getLogger("thingsboard_gateway").setLevel(level)
    return used
