"""Start-up verification and repair of file storage (also `thingsboard-gateway storage`).

`examine(folder)` reads every segment and the index and reports, changing nothing.
`repair(folder, report)` then makes the folder consistent:
- segments wholly before the read position were acked: deleted;
- a torn tail (an incomplete last frame, or damage reaching the end) is cut off;
- a segment with damage inside is rewritten with its good frames only (from the read
  position on), so later frames survive;
- a missing or corrupt index is rebuilt: reading restarts at the oldest segment;
- a read position that is not a frame boundary moves back to the frame holding it.
Each lost record is counted and logged once with its segment and offset.
"""
import logging
import os
from typing import List, Optional, Tuple

from thingsboard_gateway.storage import frames
from thingsboard_gateway.storage.segments import (IndexProblem, fsync_folder, read_index, segment_numbers,
                                                  segment_path, write_index)

log = logging.getLogger(__name__)


class SegmentReport(object):
    """What examine() found in one segment."""

    def __init__(self, number, scan, start):
        # type: (int, frames.Scan, int) -> None
        self.number = number
        self.scan = scan
        self.start = start  # first unacked byte (the read offset in the read segment, else 0)

    @property
    def pending_frames(self):
        # type: () -> List[Tuple[int, int]]
        return [f for f in self.scan.frames if f[0] >= self.start]

    @property
    def lost(self):
        # type: () -> List[Tuple[int, str]]
        """(offset, what) of each record lost at or after the read position."""
        out = [(start, "damaged bytes %d-%d" % (start, end)) for start, end in self.scan.damaged
               if end > self.start and not self._tail(end)]
        tail = self.tail_cut()
        if tail is not None and self.scan.size > self.start:
            out.append((tail, "torn tail of %d bytes" % (self.scan.size - tail)))
        return out

    def _tail(self, end):
        return end == self.scan.size

    def tail_cut(self):
        # type: () -> Optional[int]
        """Offset to truncate at: a torn frame, or damage that runs to the end."""
        if self.scan.torn_at is not None:
            return self.scan.torn_at
        if self.scan.damaged and self.scan.damaged[-1][1] == self.scan.size:
            return self.scan.damaged[-1][0]
        return None

    @property
    def inner_damage(self):
        # type: () -> bool
        return any(end > self.start and not self._tail(end) for _, end in self.scan.damaged)


class Report(object):
    """The state of a storage folder."""

    def __init__(self, folder):
        self.folder = folder
        self.segments = []  # type: List[SegmentReport]
        self.acked_segments = []  # type: List[int]
        self.read_segment = 0
        self.read_offset = 0
        self.index_problem = None  # type: Optional[str]

    @property
    def pending(self):
        return sum(len(s.pending_frames) for s in self.segments)

    @property
    def lost(self):
        return sum(len(s.lost) for s in self.segments)

    @property
    def bytes(self):
        return sum(s.scan.size for s in self.segments)

    @property
    def damaged(self):
        return bool(self.lost or self.index_problem)

    def describe_damage(self):
        # type: () -> List[str]
        lines = ["%s: %s" % (self.folder, self.index_problem)] if self.index_problem else []
        for segment in self.segments:
            for offset, what in segment.lost:
                lines.append("data_%d.dat offset %d: %s (1 record lost)" % (segment.number, offset, what))
        return lines


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _boundary_at_or_before(scan, offset):
    # type: (frames.Scan, int) -> int
    best = 0
    for start, length in scan.frames:
        if start > offset:
            break
        best = start if start + frames.HEADER_SIZE + length > offset else start + frames.HEADER_SIZE + length
    return best


def examine(folder):
    # type: (str) -> Report
    """Read the folder without changing anything."""
    report = Report(folder)
    numbers = segment_numbers(folder)
    try:
        read_segment, read_offset = read_index(folder)
    except IndexProblem as e:
        report.index_problem = str(e) if numbers else None
        read_segment, read_offset = (numbers[0] if numbers else 0), 0
    later = [n for n in numbers if n >= read_segment]
    if numbers and not later:
        # Pointing past every segment would silently drop them all: treat as damage.
        report.index_problem = "index points past the last segment (data_%d.dat)" % read_segment
        read_segment, read_offset = numbers[0], 0
    elif later and later[0] != read_segment:
        read_segment, read_offset = later[0], 0  # its segment was already deleted
    report.read_segment, report.read_offset = read_segment, read_offset
    for number in numbers:
        if number < read_segment:
            report.acked_segments.append(number)
            continue
        scan = frames.scan(_read(segment_path(folder, number)))
        start = 0
        if number == read_segment:
            if read_offset > scan.size:
                report.index_problem = "read offset %d is past the end of data_%d.dat (%d bytes)" % (
                    read_offset, number, scan.size)
                read_offset = 0
            start = min(_boundary_at_or_before(scan, read_offset), scan.size)
            if start != read_offset and not report.index_problem:
                report.index_problem = "read offset %d of data_%d.dat is not a frame boundary (moved to %d)" % (
                    read_offset, number, start)
            report.read_offset = start
        report.segments.append(SegmentReport(number, scan, start))
    return report


def _rewrite(folder, segment):
    # type: (str, SegmentReport) -> None
    data = _read(segment_path(folder, segment.number))
    path = segment_path(folder, segment.number)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for offset, length in segment.pending_frames:
            os.write(fd, data[offset:offset + frames.HEADER_SIZE + length])
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _truncate(folder, number, size):
    fd = os.open(segment_path(folder, number), os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def repair(folder, report):
    # type: (str, Report) -> int
    """Make the folder consistent as the module doc says; returns records lost."""
    for name in os.listdir(folder):
        if name.endswith(".tmp"):
            os.remove(os.path.join(folder, name))
    for number in report.acked_segments:
        os.remove(segment_path(folder, number))
    for line in report.describe_damage():
        log.error("Storage recovery: %s", line)
    for segment in report.segments:
        if segment.inner_damage:
            _rewrite(folder, segment)
            if segment.number == report.read_segment:
                report.read_offset = 0
        elif segment.tail_cut() is not None:
            _truncate(folder, segment.number, segment.tail_cut())
    if report.index_problem or report.acked_segments or any(s.inner_damage for s in report.segments):
        write_index(folder, report.read_segment, report.read_offset)
    fsync_folder(folder)
    return report.lost
