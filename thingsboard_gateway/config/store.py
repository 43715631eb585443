"""Writing configuration files safely (remote configuration, hot reload): atomically
(a temporary file, fsync, rename, fsync of the folder), with the previous version kept in
`<config folder>/backup/` (at most BACKUPS per file, oldest removed first)."""
import json
import os
import time
from typing import Any, List

BACKUPS = 10
BACKUP_FOLDER = "backup"


def canonical(value):
    # type: (Any) -> str
    """The content of a JSON value, independent of key order and spacing: two configurations
    are the same when their canonical forms are."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def read_json_or_none(path):
    # type: (str) -> Any
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def backups_of(path):
    # type: (str) -> List[str]
    """The backups of `path`, oldest first."""
    folder = os.path.join(os.path.dirname(path), BACKUP_FOLDER)
    prefix = os.path.basename(path) + "."
    try:
        names = sorted(n for n in os.listdir(folder) if n.startswith(prefix) and n.endswith(".bak"))
    except OSError:
        return []
    return [os.path.join(folder, n) for n in names]


def write_json(path, value, clock=time.time):
    # type: (str, Any, Any) -> None
    """Replace `path` with `value` (indented JSON) atomically, keeping the old content as a
    backup. OSError when the folder cannot be written (nothing is changed then)."""
    folder = os.path.dirname(os.path.abspath(path))
    data = (json.dumps(value, indent=2, sort_keys=False) + "\n").encode("utf-8")
    if os.path.exists(path):
        backup_folder = os.path.join(folder, BACKUP_FOLDER)
        os.makedirs(backup_folder, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(clock())) + "%06d" % int((clock() % 1) * 1e6)
        with open(path, "rb") as f:
            old = f.read()
        write_atomically(os.path.join(backup_folder, "%s.%s.bak" % (os.path.basename(path), stamp)), old)
        for stale in backups_of(path)[:-BACKUPS]:
            os.remove(stale)
    write_atomically(path, data)


def write_atomically(path, data, private=False):
    # type: (str, bytes, bool) -> None
    """Replace `path` with `data`: a temporary file, fsync, rename, fsync of the folder.
    `private` (secrets): mode 0600 from the start, never readable by others, not even
    briefly. OSError when it cannot (the temporary file is removed then)."""
    folder = os.path.dirname(os.path.abspath(path))
    temporary = "%s.tmp-%d" % (path, os.getpid())
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o666)
        with os.fdopen(descriptor, "wb") as f:
            if private:
                os.chmod(temporary, 0o600)  # a leftover of that name kept its mode through O_TRUNC
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
