"""A clone of this repository runs its tests, benchmarks and Makefile with nothing beside
it: no file under tests/, bench/, demo/, docs/, .ci/ or the Makefile names a path that
climbs out of the repository."""
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECKED = ["tests", "bench", "demo", "docs", ".ci", "Makefile", "debian"]
TEXT_ENDINGS = (".py", ".sh", ".md", ".txt", ".json", ".cfg", ".ini", "Makefile", "run")
# Written in two parts, so that this file does not name them itself.
FORBIDDEN = ["../" + "shared", "shared/" + "reference", "shared/" + "bench", "/work" + "/"]
PARENT_ARGS = re.compile(r'(?:"\.\."\s*,\s*)+')
RELATIVE = re.compile(r'''(?:^|[\s"'=(:])((?:\.\./)+)''')


def checked_files():
    for entry in CHECKED:
        path = os.path.join(ROOT, entry)
        if os.path.isfile(path):
            yield path
            continue
        for folder, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if d not in ("__pycache__", "upstream")]
            for name in files:
                if name.endswith(TEXT_ENDINGS) or os.access(os.path.join(folder, name), os.X_OK):
                    yield os.path.join(folder, name)


def depth(path):
    """How many folders `path`'s folder is below the repository root."""
    return len(os.path.relpath(os.path.dirname(path), ROOT).split(os.sep)) - (os.path.dirname(path) == ROOT)


def escapes(path, text):
    """The lines of `text` (the content of `path`) that reach outside the repository."""
    found = []
    limit = depth(path)
    for number, line in enumerate(text.splitlines(), 1):
        if any(f in line for f in FORBIDDEN):
            found.append((number, line.strip()))
            continue
        climbs = [m.group(0).count("..") for m in PARENT_ARGS.finditer(line)]
        climbs += [m.group(1).count("..") for m in RELATIVE.finditer(line)]
        # A join from __file__ starts in the file's folder; dirname(ROOT) is always out.
        if any(c > limit for c in climbs) or "dirname(ROOT)" in line:
            found.append((number, line.strip()))
    return found


def test_nothing_reads_a_path_outside_the_repository():
    offenders = []
    for path in checked_files():
        if os.path.abspath(path) == os.path.abspath(__file__):
            continue
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except UnicodeDecodeError:
            continue
        offenders += ["%s:%d: %s" % (os.path.relpath(path, ROOT), n, line) for n, line in escapes(path, text)]
    assert not offenders, "paths outside the repository:\n" + "\n".join(offenders)


@pytest.mark.parametrize("where,line", [
    ("tests/integration/test_x.py", 'UPSTREAM = os.path.join(os.path.dirname(__file__), "..", "..", "..", "s")'),
    ("bench/x.py", 'DEFAULT = os.path.join(os.path.dirname(ROOT), "bench", "x.py")'),
    ("Makefile", "\tpython ../../other/bench.py"),
    ("docs/X.md", "see ../" + "shared/" + "reference/x.json"),
])
def test_the_check_catches_a_path_out(where, line):
    assert escapes(os.path.join(ROOT, where), line)


@pytest.mark.parametrize("where,line", [
    ("tests/integration/test_x.py", 'os.path.join(os.path.dirname(__file__), "..", "extensions")'),
    ("tests/support/x.py", 'os.path.join(os.path.dirname(__file__), "..", "..", "config")'),
    ("Makefile", "\tcd tests && python x.py"),
])
def test_the_check_lets_paths_inside_pass(where, line):
    assert not escapes(os.path.join(ROOT, where), line)


def test_every_upstream_example_is_in_the_repository():
    """The files the tests load: byte for byte upstream's, with their NOTICE."""
    from tests.support.upstream import FOLDER, upstream_file
    for name in ("tb_gateway.json", "logs.json", "mqtt.json", "modbus.json", "modbus_serial.json", "opcua.json",
                 "ble.json", "socket.json", "rest.json", "request.json", "custom_serial.json", "statistics.json"):
        assert os.path.getsize(upstream_file(name)) > 0
    with open(os.path.join(FOLDER, "NOTICE")) as f:
        notice = f.read()
    assert "3.8.5" in notice and "Apache License" in notice


def test_a_missing_upstream_file_fails_rather_than_skips():
    from tests.support.upstream import upstream_file
    with pytest.raises(AssertionError, match="missing"):
        upstream_file("no-such-file.json")
