"""Logging set-up from logs.json (dictConfig), compatible with upstream's file.

Upstream's logs.json names its own rotating handler class and category loggers
(`service`, `tb_connection`, `storage`, `connector`, `converter`, `extension`). We map
the class to our `log_handler.TimedRotatingLogHandler` and route our module loggers to the
handlers and levels of the matching category, so an upstream file works unchanged.
"""
import copy
import logging
import os
from typing import Any, Dict

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.loader import read_json

UPSTREAM_HANDLER = "thingsboard_gateway.tb_utility.tb_rotating_file_handler.TimedRotatingFileHandler"
OUR_HANDLER = "thingsboard_gateway.config.log_handler.TimedRotatingLogHandler"
FORMER_HANDLER = "thingsboard_gateway.config.logs.TimedRotatingLogHandler"  # where it lived before 0.2

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


def _prepare(config):
    # type: (Dict[str, Any]) -> Dict[str, Any]
    config = copy.deepcopy(config)
    for handler in (config.get("handlers") or {}).values():
        if not isinstance(handler, dict):
            continue
        if handler.get("class") in (UPSTREAM_HANDLER, FORMER_HANDLER):
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
        from logging import config as dict_config  # 1.1 MB resident on Python 3.7 (socketserver, pickle): only for a logs.json
        raw = read_json(path, "logs.json")
        try:
            dict_config.dictConfig(_prepare(raw))
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
