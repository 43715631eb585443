"""The on-disk layout of file storage: segment files, the index, the folder lock.

    <folder>/data_<n>.dat   segments of frames (frames.py), n ascending
    <folder>/index.json     {"version": 1, "read_segment": n, "read_offset": bytes},
                            the durable read position, replaced atomically
    <folder>/lock           flock()ed by the process that owns the storage
"""
import errno
import fcntl
import json
import os
import re
from typing import Any, List, Optional, Tuple

from thingsboard_gateway.storage import frames

SEGMENT_RE = re.compile(r"^data_(\d+)\.dat$")
INDEX = "index.json"
LOCK = "lock"


class StorageLocked(Exception):
    """Another process holds the storage folder."""


class IndexProblem(Exception):
    """The index is missing or unreadable; the reason is the message."""


def segment_path(folder, number):
    # type: (str, int) -> str
    return os.path.join(folder, "data_%d.dat" % number)


def segment_numbers(folder):
    # type: (str) -> List[int]
    numbers = []
    for name in os.listdir(folder):
        match = SEGMENT_RE.match(name)
        if match:
            numbers.append(int(match.group(1)))
    return sorted(numbers)


def frames_before(folder, number, offset):
    # type: (str, int, int) -> int
    """How many frames segment `number` holds before `offset`."""
    with open(segment_path(folder, number), "rb") as f:
        return len(frames.scan(f.read(offset)).frames)


def fsync_folder(folder):
    # type: (str) -> None
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_index(folder):
    # type: (str) -> Tuple[int, int]
    """(read segment, read offset) or IndexProblem."""
    path = os.path.join(folder, INDEX)
    try:
        with open(path, "rb") as f:
            raw = json.loads(f.read().decode("utf-8"))
        position = int(raw["read_segment"]), int(raw["read_offset"])
    except FileNotFoundError:
        raise IndexProblem("index missing")
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise IndexProblem("index unreadable (%s)" % e)
    if position[0] < 0 or position[1] < 0:
        raise IndexProblem("index holds a negative position")
    return position


def write_index(folder, segment, offset, durable=True):
    # type: (str, int, int, bool) -> None
    """Replace the index atomically: temp file, rename. durable: fsync the file before the
    rename and the folder after it (without, a process killed afterwards still reads the
    new index; a power cut may leave the old one, or none: recovery then starts earlier,
    which re-sends, never loses)."""
    path = os.path.join(folder, INDEX)
    tmp = path + ".tmp"
    data = json.dumps({"version": 1, "read_segment": segment, "read_offset": offset}).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable:
        fsync_folder(folder)


class IndexFile(object):
    """The folder's index as file storage keeps it: written at each commit without fsync
    (a process killed afterwards still reads it), made durable at most every
    `sync_interval` s, and at close. An SD card's fsync can take 30 ms; two per commit
    (file and folder) had the storage writer spend most of its time there."""

    def __init__(self, folder, position, clock, sync_interval=1.0):
        # type: (str, Tuple[int, int], Any, float) -> None
        self._folder = folder
        self._clock = clock
        self._sync_interval = sync_interval
        self.position = position  # what the file holds
        self._synced = True
        self._synced_at = clock()
        self.fsyncs = 0

    def sync_wait(self):
        # type: () -> Optional[float]
        """Seconds until the last write is due to be made durable; None if it is."""
        if self._synced:
            return None
        return max(0.0, self._synced_at + self._sync_interval - self._clock())

    def write(self, position=None, durable=None):
        # type: (Optional[Tuple[int, int]], Optional[bool]) -> None
        """Write `position` (None: make the current one durable if due). durable: None =
        when due, True = now."""
        if durable is None:
            durable = self.sync_wait() == 0.0
        if position is None and not durable:
            return
        self.position = position or self.position
        write_index(self._folder, self.position[0], self.position[1], durable)
        self._synced = durable
        if durable:
            self.fsyncs += 2
            self._synced_at = self._clock()


def prepare_folder(folder):
    # type: (str) -> Optional[str]
    """Create the folder if needed; the reason it cannot be used, or None."""
    try:
        os.makedirs(folder, exist_ok=True)
    except PermissionError:
        return "cannot create %s: permission denied" % folder
    except OSError as e:
        return "cannot create %s: %s" % (folder, e.strerror or e)
    if not os.access(folder, os.W_OK | os.X_OK):
        return "cannot write %s: permission denied" % folder
    return None


def lock_folder(folder):
    # type: (str) -> int
    """flock the folder's lock file; the fd to keep open, or StorageLocked."""
    fd = os.open(os.path.join(folder, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
            raise StorageLocked("storage %s is in use by another process (pid %s)" % (folder, holder))
        raise
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def open_storage_folder(folder, config_key):
    # type: (str, str) -> int
    """Create/check the folder and lock it (the fd to keep open); start-up problems
    become a ConfigError naming `storage.<config_key>`."""
    from thingsboard_gateway.config.errors import ConfigError
    path = "storage." + config_key
    problem = prepare_folder(folder)
    if problem:
        raise ConfigError("tb_gateway.json", path, problem)
    try:
        return lock_folder(folder)
    except StorageLocked as e:
        raise ConfigError("tb_gateway.json", path, str(e))
    except PermissionError:
        raise ConfigError("tb_gateway.json", path, "cannot write %s: permission denied" % folder)


def unlock_folder(fd):
    # type: (int) -> None
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing releases the flock
