"""The checksums ThingsBoard's OTA packages carry (`sw_checksum_algorithm`): MD5, SHA256,
SHA384, SHA512, CRC32, MURMUR3_32, MURMUR3_128, as lower-case hex of the digest's bytes the
way ThingsBoard writes them (hashlib's digests; CRC32 and Murmur3 as their little-endian
bytes, Guava's HashCode text). Murmur3 (x86 32-bit and x64 128-bit, seed 0) is written here
from its published definition: no C extension on the boards."""
import hashlib
import struct
import zlib
from typing import Any, Callable, Dict, Iterable

MASK32, MASK64 = 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF


def _rotl32(x, r):
    return ((x << r) | (x >> (32 - r))) & MASK32


def _rotl64(x, r):
    return ((x << r) | (x >> (64 - r))) & MASK64


def _fmix32(h):
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & MASK32
    return h ^ (h >> 16)


def _fmix64(k):
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & MASK64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & MASK64
    return k ^ (k >> 33)


def murmur3_32(data, seed=0):
    # type: (bytes, int) -> int
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = seed & MASK32
    blocks = len(data) // 4
    for (k,) in struct.iter_unpack("<I", data[:blocks * 4]):
        k = _rotl32((k * c1) & MASK32, 15)
        h ^= (k * c2) & MASK32
        h = (_rotl32(h, 13) * 5 + 0xE6546B64) & MASK32
    tail = data[blocks * 4:]
    if tail:
        k = int.from_bytes(tail, "little")
        k = _rotl32((k * c1) & MASK32, 15)
        h ^= (k * c2) & MASK32
    return _fmix32(h ^ len(data))


def murmur3_128(data, seed=0):
    # type: (bytes, int) -> bytes
    """The x64 128-bit variant's 16 bytes (h1 then h2, little-endian)."""
    c1, c2 = 0x87C37B91114253D5, 0x4CF5AD432745937F
    h1 = h2 = seed & MASK64
    blocks = len(data) // 16
    for k1, k2 in struct.iter_unpack("<QQ", data[:blocks * 16]):
        k1 = (_rotl64((k1 * c1) & MASK64, 31) * c2) & MASK64
        h1 ^= k1
        h1 = (_rotl64(h1, 27) + h2) & MASK64
        h1 = (h1 * 5 + 0x52DCE729) & MASK64
        k2 = (_rotl64((k2 * c2) & MASK64, 33) * c1) & MASK64
        h2 ^= k2
        h2 = (_rotl64(h2, 31) + h1) & MASK64
        h2 = (h2 * 5 + 0x38495AB5) & MASK64
    tail = data[blocks * 16:]
    if len(tail) > 8:
        k2 = int.from_bytes(tail[8:], "little")
        h2 ^= (_rotl64((k2 * c2) & MASK64, 33) * c1) & MASK64
    if tail:
        k1 = int.from_bytes(tail[:8], "little")
        h1 ^= (_rotl64((k1 * c1) & MASK64, 31) * c2) & MASK64
    h1 ^= len(data)
    h2 ^= len(data)
    h1 = (h1 + h2) & MASK64
    h2 = (h2 + h1) & MASK64
    h1, h2 = _fmix64(h1), _fmix64(h2)
    h1 = (h1 + h2) & MASK64
    h2 = (h2 + h1) & MASK64
    return struct.pack("<QQ", h1, h2)


class _Whole(object):
    """Murmur3 has no running form here: the chunks are kept and hashed at the end."""

    def __init__(self, finish):
        # type: (Callable[[bytes], str]) -> None
        self._parts = []  # type: list
        self._finish = finish

    def update(self, data):
        self._parts.append(bytes(data))

    def hexdigest(self):
        return self._finish(b"".join(self._parts))


class _Crc32(object):
    def __init__(self):
        self.value = 0

    def update(self, data):
        self.value = zlib.crc32(data, self.value)

    def hexdigest(self):
        return struct.pack("<I", self.value & MASK32).hex()


ALGORITHMS = {
    "MD5": hashlib.md5, "SHA256": hashlib.sha256, "SHA384": hashlib.sha384, "SHA512": hashlib.sha512,
    "CRC32": _Crc32,
    "MURMUR3_32": lambda: _Whole(lambda data: struct.pack("<I", murmur3_32(data)).hex()),
    "MURMUR3_128": lambda: _Whole(lambda data: murmur3_128(data).hex()),
}  # type: Dict[str, Callable[[], Any]]


def hasher(algorithm):
    # type: (str) -> Any
    """A running checksum (update(bytes), hexdigest()); KeyError for an unknown algorithm."""
    return ALGORITHMS[str(algorithm).upper().replace("-", "")]()


def matches(expected, actual):
    # type: (str, str) -> bool
    """ThingsBoard's text (lower-case hex); also the tb-mqtt-client SDK's form of CRC32 and
    Murmur3, which drops the zero bytes a little-endian value ends with."""
    expected, actual = str(expected).strip().lower(), actual.lower()
    if expected == actual:
        return True
    trimmed = actual
    while trimmed.endswith("00") and len(trimmed) > 2:
        trimmed = trimmed[:-2]
    return expected == trimmed


def checksum_of(algorithm, chunks):
    # type: (str, Iterable[bytes]) -> str
    running = hasher(algorithm)
    for chunk in chunks:
        running.update(chunk)
    return running.hexdigest()
