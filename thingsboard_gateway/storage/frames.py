"""The frame codec of file storage segments, and scanning a segment for damage (pure).

A segment `data_<n>.dat` is a sequence of frames:

    [u32 length, big-endian][u32 crc32 of payload, big-endian][payload: `length` bytes]

A frame is good when its header is complete, its length is plausible, its payload is
complete and its CRC matches. Scanning finds the good frames; bytes between good
frames are a damaged region (counted as one lost record each); an incomplete frame at
the end is a torn tail (one lost record, cut off on recovery).
"""
import struct
import zlib
from typing import List, NamedTuple, Optional, Tuple

HEADER = struct.Struct(">II")
HEADER_SIZE = HEADER.size
MAX_FRAME = 16 * 1024 * 1024  # a larger length field is damage, not data


def encode(payload):
    # type: (bytes) -> bytes
    """One frame for `payload` (which must not be empty)."""
    return HEADER.pack(len(payload), zlib.crc32(payload) & 0xFFFFFFFF) + payload


def frame_at(data, offset):
    # type: (bytes, int) -> Optional[int]
    """Length of the good frame starting at `offset`, or None."""
    if offset + HEADER_SIZE > len(data):
        return None
    length, crc = HEADER.unpack_from(data, offset)
    end = offset + HEADER_SIZE + length
    if length == 0 or length > MAX_FRAME or end > len(data):
        return None  # we never write empty payloads: zeros left by a power cut are damage
    if zlib.crc32(data[offset + HEADER_SIZE:end]) & 0xFFFFFFFF != crc:
        return None
    return length


Scan = NamedTuple("Scan", [("frames", List[Tuple[int, int]]),      # (offset, payload length) of good frames
                           ("damaged", List[Tuple[int, int]]),     # (start, end) byte ranges skipped
                           ("torn_at", Optional[int]),             # offset of an incomplete last frame
                           ("size", int)])


def _is_torn(data, offset):
    """An incomplete frame running into the end of data (a write cut short)."""
    if offset + HEADER_SIZE > len(data):
        return True
    length, _ = HEADER.unpack_from(data, offset)
    return length <= MAX_FRAME and offset + HEADER_SIZE + length > len(data)


def scan(data):
    # type: (bytes) -> Scan
    """Every good frame of a segment's bytes, the damaged regions between, a torn tail."""
    frames = []  # type: List[Tuple[int, int]]
    damaged = []  # type: List[Tuple[int, int]]
    offset = 0
    size = len(data)
    while offset < size:
        length = frame_at(data, offset)
        if length is not None:
            frames.append((offset, length))
            offset += HEADER_SIZE + length
            continue
        following = next_good(data, offset + 1)
        if following is None and _is_torn(data, offset):
            return Scan(frames, damaged, offset, size)
        end = size if following is None else following
        damaged.append((offset, end))
        offset = end
    return Scan(frames, damaged, None, size)


def next_good(data, start):
    # type: (bytes, int) -> Optional[int]
    """The first offset >= start where a good frame begins (resynchronisation)."""
    for offset in range(start, len(data) - HEADER_SIZE + 1):
        if frame_at(data, offset) is not None:
            return offset
    return None
