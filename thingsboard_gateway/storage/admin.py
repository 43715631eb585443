"""`thingsboard-gateway storage inspect|verify|repair`: offline looks at durable storage.

Each takes the storage folder's lock first, so it refuses to touch storage that a
running gateway holds. Returns (exit code, lines to print).
"""
import os
import sqlite3
import time
from typing import Any, Dict, List, Optional, Tuple

from thingsboard_gateway.storage import frames, recovery
from thingsboard_gateway.storage.record import Record
from thingsboard_gateway.storage.segments import StorageLocked, lock_folder, segment_path, unlock_folder

EXIT_OK, EXIT_DAMAGED, EXIT_REFUSED = 0, 1, 2


def _age(ts_ms, now):
    # type: (Optional[float], float) -> str
    if ts_ms is None:
        return "-"
    seconds = max(0.0, now - ts_ms / 1000.0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return "%.1f %s" % (seconds / size, unit)
    return "%.0f s" % seconds


def _record_ts(payload):
    # type: (bytes) -> Optional[float]
    try:
        stamps = [e["ts"] for e in Record.decode(payload).telemetry_entries()]
        return min(stamps) if stamps else None
    except (ValueError, TypeError, KeyError, UnicodeDecodeError):
        return None


def _oldest_ts(report):
    # type: (recovery.Report) -> Optional[float]
    for segment in report.segments:
        pending = segment.pending_frames
        if pending:
            offset, length = pending[0]
            with open(segment_path(report.folder, segment.number), "rb") as f:
                f.seek(offset + frames.HEADER_SIZE)
                return _record_ts(f.read(length))
    return None


def file_storage(command, folder):
    # type: (str, str) -> Tuple[int, List[str]]
    if not os.path.isdir(folder):
        return EXIT_OK, ["%s: no storage folder (nothing stored yet)" % folder]
    try:
        lock = lock_folder(folder)
    except StorageLocked as e:
        return EXIT_REFUSED, ["refused: %s; stop the gateway first" % e]
    try:
        report = recovery.examine(folder)
        lines = ["file storage %s" % folder,
                 "  records waiting: %d" % report.pending,
                 "  segments:        %d (%s)" % (len(report.segments),
                                                 ", ".join("data_%d.dat" % s.number for s in report.segments)),
                 "  bytes:           %d" % report.bytes,
                 "  read position:   data_%d.dat offset %d" % (report.read_segment, report.read_offset),
                 "  oldest record:   %s old" % _age(_oldest_ts(report), time.time())]
        damage = report.describe_damage()
        if command == "inspect":
            if damage:
                lines.append("  damage found: %d problem(s); run `storage verify` for details" % len(damage))
            return EXIT_OK, lines
        if command == "verify":
            if not damage:
                return EXIT_OK, lines + ["  verify: every frame is intact"]
            return EXIT_DAMAGED, lines + ["  damaged: " + line for line in damage]
        lost = recovery.repair(folder, report)
        lines += ["  repaired: " + line for line in damage] or ["  repair: nothing to repair"]
        lines.append("  records dropped by repair: %d" % lost)
        return EXIT_OK, lines
    finally:
        unlock_folder(lock)


def sqlite_storage(command, path):
    # type: (str, str) -> Tuple[int, List[str]]
    if path.endswith("/") or os.path.isdir(path):
        path = os.path.join(path, "data.db")
    if not os.path.isfile(path):
        return EXIT_OK, ["%s: no database (nothing stored yet)" % path]
    try:
        lock = lock_folder(os.path.dirname(os.path.abspath(path)))
    except StorageLocked as e:
        return EXIT_REFUSED, ["refused: %s; stop the gateway first" % e]
    try:
        db = sqlite3.connect(path)
        try:
            count, oldest = db.execute("SELECT COUNT(*), MIN(ts) FROM events").fetchone()
            integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            db.close()
        lines = ["sqlite storage %s" % path, "  records waiting: %d" % count,
                 "  bytes:           %d" % os.path.getsize(path),
                 "  oldest record:   %s old" % _age(oldest * 1000.0 if oldest else None, time.time()),
                 "  integrity:       %s" % integrity]
        if command == "verify" and integrity != "ok":
            return EXIT_DAMAGED, lines
        if command == "repair":
            lines.append("  repair: %s" % ("nothing to repair" if integrity == "ok" else
                                           "SQLite damage cannot be repaired in place; move the file away"))
        return EXIT_OK, lines
    finally:
        unlock_folder(lock)


def run(command, storage_config):
    # type: (str, Dict[str, Any]) -> Tuple[int, List[str]]
    kind = storage_config["type"]
    if kind == "file":
        return file_storage(command, storage_config["data_folder_path"])
    if kind == "sqlite":
        return sqlite_storage(command, storage_config["data_file_path"])
    return EXIT_OK, ["memory storage keeps nothing on disk"]
