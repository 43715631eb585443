"""A byte stream cut into frames, bounded (serial lines, TCP streams): a frame ends with a
delimiter or is `length` bytes long; a frame longer than max_length is counted
(`overlong`) and skipped up to its next delimiter, so the buffer never grows past that
bound. Pure: no I/O."""
from typing import List, Optional


class Framer(object):
    """Cuts a byte stream into frames; bounded. Not thread-safe (one port thread owns it)."""

    def __init__(self, delimiter=b"\n", length=None, max_length=4096):
        # type: (bytes, Optional[int], int) -> None
        self.delimiter = delimiter
        self.length = length
        self.max_length = max(max_length, length or 0)
        self._buffer = bytearray()
        self._skipping = False  # inside an over-long frame: drop bytes up to its delimiter
        self.overlong = 0

    def feed(self, data):
        # type: (bytes) -> List[bytes]
        """The complete frames in `data` (and what was buffered before), without delimiters."""
        self._buffer += data
        if self.length:
            count = len(self._buffer) // self.length
            frames = [bytes(self._buffer[i * self.length:(i + 1) * self.length]) for i in range(count)]
            del self._buffer[:count * self.length]
            return frames
        frames = []
        start = 0
        while True:
            end = self._buffer.find(self.delimiter, start)
            if end < 0:
                break
            if self._skipping:
                self._skipping = False
            elif end - start > self.max_length:
                self.overlong += 1
            else:
                frames.append(bytes(self._buffer[start:end]))
            start = end + len(self.delimiter)
        del self._buffer[:start]
        if len(self._buffer) > self.max_length:
            if not self._skipping:
                self.overlong += 1
            self._skipping = True
            del self._buffer[:len(self._buffer) - len(self.delimiter) + 1]  # keep a possible split delimiter
        return frames

    def pending(self):
        # type: () -> int
        """Bytes of an incomplete frame held."""
        return 0 if self._skipping else len(self._buffer)

    def take_rest(self):
        # type: () -> bytes
        """The incomplete frame held (and forget it)."""
        rest = b"" if self._skipping else bytes(self._buffer)
        self._buffer = bytearray()
        self._skipping = False
        return rest
