"""What a connector configuration from ThingsBoard (or a file edited on disk) must pass
before anything is written or restarted: a plain file name of its own, a built-in type,
no custom class that the local files do not already name, valid report strategies, and
the connector's own validator (the one `check` runs)."""
import copy
import os
import re
from typing import Any, Dict, List, Optional, Tuple

from thingsboard_gateway.config.errors import ConfigError
from thingsboard_gateway.config.loader import ConnectorSpec
from thingsboard_gateway.config.report_strategy import check_strategies
from thingsboard_gateway.config.schema import walk
from thingsboard_gateway.config.store import read_json_or_none
from thingsboard_gateway.connectors.registry import BUILTIN, connector_class

LIFTED = ("logLevel", "enableRemoteLogging", "reportStrategy", "configVersion")  # out of a file, in the attribute
LIFTED_ABSENT = {"logLevel": "INFO", "enableRemoteLogging": False}  # what a file without them means
CODE_KEYS = ("class", "extension", "converter", "uplink_converter", "downlink_converter")
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]*\.json$")
RESERVED_FILES = ("tb_gateway.json", "logs.json", "statistics.json")


def code_references(value):
    # type: (Any) -> List[Tuple[str, str]]
    """(JSON path, class name) of every custom class a connector file names."""
    return [(path, item) for path, key, item in walk(value) if key in CODE_KEYS and isinstance(item, str)]


def without_ts(value):
    # type: (Any) -> Any
    return {k: v for k, v in value.items() if k != "ts"} if isinstance(value, dict) else value


def checked_connector(gateway_config, name, value, spec, local=False, others=None):
    # type: (Any, str, Dict[str, Any], Optional[ConnectorSpec], bool, Any) -> Tuple[ConnectorSpec, Dict[str, Any]]
    """The spec and file content a connector attribute (or, `local`, a file edited on
    disk) asks for, checked as `check` checks; ConfigError naming what is refused.
    others: the connectors configured now (default: gateway_config's)."""
    kind = value.get("type")
    content = value.get("configurationJson")
    if not isinstance(content, dict):
        raise ConfigError(name, "configurationJson", "expected the connector file's content (an object)")
    file = value.get("configuration") or (spec.file if spec is not None else
                                          re.sub(r"[^A-Za-z0-9_.-]+", "_", name).lower() + ".json")
    if not isinstance(file, str) or not FILE_NAME.match(file) or file in RESERVED_FILES:
        raise ConfigError(name, "configuration", "expected a plain file name like \"modbus.json\", got %r" % file)
    if any(s.file == file and s.name != name for s in (gateway_config.connectors if others is None else others)):
        raise ConfigError(name, "configuration", "%s belongs to another connector" % file)
    class_name = spec.class_name if spec is not None and spec.type == kind else None
    if value.get("class") and value.get("class") != class_name and not local:
        raise ConfigError(name, "class", "custom connector classes come only from local files")
    if kind not in BUILTIN and class_name is None:
        raise ConfigError(name, "type", "expected a built-in type (%s); custom connectors come only from local "
                                        "files" % ", ".join(sorted(BUILTIN)))
    content = dict(content)
    on_disk = read_json_or_none(spec.config_path) if spec is not None else None
    for key in LIFTED:
        # Lifted out of the file in our report; back in only when the file has it or it is
        # not what its absence means (so a re-sent report is identical to the file).
        if key in value and (key in (on_disk or {}) or value[key] != LIFTED_ABSENT.get(key)):
            content[key] = value[key]
    allowed = set(ref for _, ref in code_references(on_disk or {}))
    for path, ref in code_references(content):
        if ref not in allowed and not local:
            raise ConfigError(name, "configurationJson." + path,
                              "custom converter classes come only from local files (%r is new)" % ref)
    if spec is not None and content.get("id") == spec.id and "id" not in (on_disk or {}):
        del content["id"]  # the id our report added: not written into the file
    check_strategies(content, file)
    config = content
    if class_name is None:
        config = connector_class(kind, None).load_config(copy.deepcopy(content), file, [])
    config = dict(config, configuration=file)
    connector_id = content.get("id") if isinstance(content.get("id"), str) else (spec.id if spec else None)
    return ConnectorSpec(name, kind, class_name, os.path.join(gateway_config.folder, file), config, file,
                         connector_id), content
