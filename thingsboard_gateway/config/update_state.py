"""What a running gateway, the update guard (update_guard.py) and the next version tell
each other about an update of the gateway itself: `<data folder>/update/state.json`.

    installing  the old version verified a package and stopped; the guard installs it
    trial       installed; the new version runs until it has connected to the platform
    committed   it connected: the update is kept
    failed      not installed, or rolled back (`error` says why); that version is not tried again

The guard imports this module before the install replaces the package: standard library
and config/store only."""
import json
import os
from typing import Any, Dict, Tuple

from thingsboard_gateway.config.store import read_json_or_none, write_atomically

FOLDER = "update"
INSTALLING, TRIAL, COMMITTED, FAILED = "installing", "trial", "committed", "failed"
# Set in the environment of a gateway that runs under the guard: it hands a staged update
# back to the guard (exit EXIT_UPDATE) instead of starting a guard of its own.
GUARD_ENV = "TB_GW_UPDATE_GUARD"
EXIT_UPDATE = 75


def folder(data_folder):
    # type: (str) -> str
    return os.path.join(data_folder or "./data/", FOLDER)


def state_path(data_folder):
    # type: (str) -> str
    return os.path.join(folder(data_folder), "state.json")


def read(path):
    # type: (str) -> Dict[str, Any]
    """The state, or {} when there is none (or it is unreadable)."""
    state = read_json_or_none(path)
    return state if isinstance(state, dict) else {}


def write(path, state):
    # type: (str, Dict[str, Any]) -> None
    """Atomically, mode 0600 (it names the commands that install). OSError when it cannot."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomically(path, json.dumps(state, indent=1, sort_keys=True).encode("utf-8"), private=True)


def failed_key(state):
    # type: (Dict[str, Any]) -> Tuple[Any, Any, Any]
    """What identifies a version that failed (title, version, checksum): not tried again."""
    return state.get("title"), state.get("version"), state.get("checksum")


def remove(path):
    # type: (str) -> None
    """Remove a file of the update (a package, a part downloaded) if it is there."""
    try:
        os.unlink(path)
    except OSError:
        pass
