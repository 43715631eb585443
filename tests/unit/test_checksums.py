"""ThingsBoard's OTA checksums as its server writes them: hashlib's, and CRC32 and Murmur3 as
their little-endian bytes (Guava's text), cross-checked with zlib and the mmh3 C library."""
import hashlib
import os
import struct
import zlib

import pytest

from thingsboard_gateway.runtime.checksums import checksum_of, matches, murmur3_128, murmur3_32


def test_known_values():
    assert murmur3_32(b"") == 0 and murmur3_32(b"hello") == 0x248BFA47
    assert murmur3_128(b"hello").hex() == "029bbd41b3a7d8cb191dae486a901e5b"
    assert checksum_of("MURMUR3_32", [b"hel", b"lo"]) == "47fa8b24"  # bytes of 0x248bfa47, little-endian
    assert checksum_of("CRC32", [b"hel", b"lo"]) == struct.pack("<I", zlib.crc32(b"hello")).hex()
    for name in ("md5", "sha256", "sha384", "sha512"):
        assert checksum_of(name.upper(), [b"hel", b"lo"]) == hashlib.new(name, b"hello").hexdigest()


def test_murmur3_against_the_c_library_for_every_tail_length():
    mmh3 = pytest.importorskip("mmh3")
    for n in list(range(0, 40)) + [1000, 4097, 65536 + 3]:
        data = os.urandom(n)
        assert murmur3_32(data) == mmh3.hash(data, 0, signed=False), n
        assert murmur3_128(data) == mmh3.hash_bytes(data), n


def test_the_sdks_trimmed_form_matches_too():
    digest = struct.pack("<I", 0x00ABCDEF).hex()  # "efcdab00"
    assert matches("efcdab00", digest) and matches("EFCDAB", digest) and not matches("efcdab01", digest)
    with pytest.raises(KeyError):
        checksum_of("SHA1024", [b""])
