"""Layers point one way: each package imports only from its own layer or lower ones.

runtime -> config -> storage, conversion -> the MQTT transport -> platform -> connectors
-> gateway -> cli and the update guard. (A lower layer that needs something from a higher one gets it
passed in: a callback, a class, an object.)"""
import ast
import os

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "thingsboard_gateway")
LAYERS = {"runtime": 0, "config": 1, "storage": 2, "conversion": 2, "mqtt": 3, "platform": 4, "connectors": 5,
          "gateway": 6, "cli": 7, "update_guard": 7, "__main__": 8}
MAX_LINES = 400


def modules():
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                yield os.path.join(folder, name)


def layer_of_path(path):
    first = os.path.relpath(path, PACKAGE).split(os.sep)[0]
    return first[:-3] if first.endswith(".py") else first


def imported(path):
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "thingsboard_gateway" and len(parts) > 1:
                yield node.lineno, parts[1]


def test_every_package_has_a_layer():
    assert {layer_of_path(p) for p in modules()} - {"__init__"} <= set(LAYERS)


def test_imports_point_down_the_layers():
    wrong = []
    for path in modules():
        here = layer_of_path(path)
        if here == "__init__":
            continue
        for line, target in imported(path):
            if target in LAYERS and LAYERS[target] > LAYERS[here]:
                wrong.append("%s:%d imports %s" % (os.path.relpath(path, PACKAGE), line, target))
    assert not wrong, wrong


def test_no_module_is_over_400_lines():
    long = ["%s: %d" % (os.path.relpath(p, PACKAGE), n) for p in modules()
            for n in [sum(1 for _ in open(p, encoding="utf-8"))] if n > MAX_LINES]
    assert not long, long


def test_uplink_and_downlink_modules_do_not_import_their_config_module():
    """Converters are pure and below their connector's config: the dry-run adapters live in
    sample.py (this is what kept config <-> uplink circles out)."""
    wrong = []
    for path in modules():
        parts = os.path.relpath(path, PACKAGE).split(os.sep)
        if len(parts) == 3 and parts[0] == "connectors" and parts[2] in ("uplink.py", "downlink.py"):
            tree = ast.parse(open(path, encoding="utf-8").read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module == "thingsboard_gateway.connectors.%s.config" % parts[1]:
                    wrong.append("%s:%d" % (os.path.relpath(path, PACKAGE), node.lineno))
    assert not wrong, wrong


def test_no_connector_folder_imports_another_connectors_folder():
    """Shared pure pieces live in conversion/ (framing, the mapping converter, the Converter
    base); http/ holds what REST and request share. A connector folder imports only its
    own folder, http/, and the kit's modules (connectors/*.py)."""
    connectors = os.path.join(PACKAGE, "connectors")
    folders = set(name for name in os.listdir(connectors) if os.path.isdir(os.path.join(connectors, name))
                  and not name.startswith("__"))
    wrong = []
    for path in modules():
        parts = os.path.relpath(path, connectors).split(os.sep)
        if len(parts) < 2 or parts[0] not in folders:
            continue
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                    "thingsboard_gateway.connectors."):
                target = node.module.split(".")[2]
                if target in folders and target not in (parts[0], "http"):
                    wrong.append("connectors/%s:%d imports connectors.%s" % ("/".join(parts), node.lineno, target))
    assert wrong == []
