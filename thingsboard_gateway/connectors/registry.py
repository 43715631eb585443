"""Connector types -> classes: the built-in table and custom ones from extensions folders.

A built-in connector is one line in BUILTIN. A custom connector is named by `class` in
tb_gateway.json and found in `<extensions dir>/<type>/*.py` (upstream's layout).
"""
import importlib
import os
import sys
from typing import Any, List, Mapping, Optional

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.report_strategy import check_strategies
from thingsboard_gateway.connectors.connector import VALIDATED

# type -> "module:Class"; imported only when a config uses the type.
BUILTIN = {
    "mqtt": "thingsboard_gateway.connectors.mqtt.connector:MqttConnector",
    "modbus": "thingsboard_gateway.connectors.modbus.connector:ModbusConnector",
    "opcua": "thingsboard_gateway.connectors.opcua.connector:OpcUaConnector",
    "serial": "thingsboard_gateway.connectors.serial.connector:SerialConnector",
    "socket": "thingsboard_gateway.connectors.socket.connector:SocketConnector",
    "rest": "thingsboard_gateway.connectors.rest.connector:RestConnector",
    "request": "thingsboard_gateway.connectors.request.connector:RequestConnector",
    "ble": "thingsboard_gateway.connectors.ble.connector:BleConnector",
    "snmp": "thingsboard_gateway.connectors.snmp.connector:SnmpConnector",
}

# Upstream ships some connectors as extension examples named by `class`; when no such
# class is found in the extensions folders, the entry runs on our built-in type.
UPSTREAM_CLASSES = {"CustomSerialConnector": "serial"}

SYSTEM_EXTENSIONS = "/var/lib/thingsboard_gateway/extensions"
PROJECT_EXTENSIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                  "extensions")


class ExtensionError(Exception):
    """A connector or converter class could not be found or loaded."""


def extension_dirs(env=None):
    # type: (Optional[Mapping[str, str]]) -> List[str]
    """Where custom classes are searched, in order: $TB_GW_EXTENSIONS_DIR (os.pathsep
    separated), the project's extensions/, /var/lib/thingsboard_gateway/extensions."""
    env = os.environ if env is None else env
    dirs = [d for d in env.get("TB_GW_EXTENSIONS_DIR", "").split(os.pathsep) if d]
    dirs += [PROJECT_EXTENSIONS, SYSTEM_EXTENSIONS]
    return dirs


def _import_builtin(target):
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def _load_module(path, type_name):
    stem = os.path.splitext(os.path.basename(path))[0]
    module_name = "tb_extensions.%s.%s" % (type_name, stem)
    if module_name in sys.modules:
        return sys.modules[module_name]
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # lets an extension import its sibling modules
    import importlib.util  # extension files only
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def find_extension_class(class_name, type_name, dirs):
    # type: (str, str, List[str]) -> type
    """Find `class_name` in `<dir>/<type_name>/*.py` for each dir; a dotted name
    (`package.module.Class`) is imported directly. Raises ExtensionError naming the
    places searched."""
    if "." in class_name:
        module_name, _, attr = class_name.rpartition(".")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as e:
            raise ExtensionError("cannot import %s: %s" % (class_name, e))
    searched = []
    needle = "class %s" % class_name
    for base in dirs:
        folder = os.path.join(base, type_name)
        searched.append(folder)
        if not os.path.isdir(folder):
            continue
        for entry in sorted(os.listdir(folder)):
            path = os.path.join(folder, entry)
            if not entry.endswith(".py") or not os.path.isfile(path):
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                if needle not in f.read():
                    continue
            try:
                module = _load_module(path, type_name)
            except Exception as e:
                raise ExtensionError("loading %s failed: %s: %s" % (path, type(e).__name__, e))
            found = getattr(module, class_name, None)
            if isinstance(found, type):
                return found
    raise ExtensionError("class %s not found; searched %s" % (class_name, ", ".join(searched)))


def connector_class(type_name, class_name=None, dirs=None):
    # type: (str, Optional[str], Optional[List[str]]) -> type
    """The class for a connectors[] entry: `class` if given, else the built-in type."""
    if class_name:
        try:
            return find_extension_class(class_name, type_name, dirs if dirs is not None else extension_dirs())
        except ExtensionError:
            if class_name not in UPSTREAM_CLASSES:
                raise
            return _import_builtin(BUILTIN[UPSTREAM_CLASSES[class_name]])
    target = BUILTIN.get(type_name)
    if target is None:
        known = ", ".join(sorted(BUILTIN)) or "none yet"
        raise ExtensionError("unknown connector type %r (built-in types: %s; a custom connector needs "
                             "\"class\")" % (type_name, known))
    return _import_builtin(target)


def load_converter(class_name, type_name, file, path, config, dirs=None):
    # type: (str, str, str, str, Any, Optional[List[str]]) -> Any
    """An instance of the custom converter `class_name` from `<extensions dir>/<type_name>/`,
    made with `config` (upstream's signatures: (config) or (config, logger)). A class that
    is missing or fails to load is one ConfigError naming the key and the places searched."""
    import logging
    try:
        cls = find_extension_class(class_name, type_name, dirs if dirs is not None else extension_dirs())
    except ExtensionError as e:
        raise ConfigError(file, path, str(e))
    try:
        return cls(config)
    except TypeError:
        return cls(config, logging.getLogger("extensions." + type_name))


def validate_connector_files(config):
    # type: (Any) -> Any
    """Let each connector class validate (and complete with defaults) its own file, in
    place: ConfigError for a bad one, warnings added to config.warnings. A custom class
    that cannot be found is left to the supervisor (that connector alone is disabled)
    and to `check`, which reports it. Returns `config`."""
    for spec in config.connectors:
        if spec.config is not None:
            check_strategies(spec.config, spec.file)  # every reportStrategy in the file, at any level
        if spec.config is None or (not spec.class_name and spec.type not in BUILTIN):
            continue
        try:
            cls = connector_class(spec.type, spec.class_name)
        except ExtensionError as e:
            if spec.class_name:
                continue
            raise ConfigError(spec.file, "", str(e))
        spec.config = cls.load_config(spec.config, spec.file, config.warnings)
        spec.config["configuration"] = spec.file
        if getattr(cls, "takes_validated", False):  # a kit connector: it need not validate it again
            spec.config[VALIDATED] = True
    return config
