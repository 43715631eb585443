"""Upstream's example configuration files, kept in tests/upstream/ (see its NOTICE)."""
import json
import os

FOLDER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "upstream")


def upstream_file(name):
    """The path of upstream's example file `name`; fails the test (never skips) when the
    file is missing, since it is part of the repository."""
    path = os.path.join(FOLDER, name)
    if not os.path.isfile(path):
        raise AssertionError("upstream example %s is missing from tests/upstream/" % name)
    return path


def upstream_config(name):
    """Upstream's example file `name`, parsed."""
    with open(upstream_file(name)) as f:
        return json.load(f)
