"""What the C allocator keeps of memory the gateway no longer uses (glibc only).

glibc gives each thread that allocates while another holds the lock an arena of its own
(up to 8 per core), and an arena keeps the pages its freed blocks sit in. The gateway runs
about eight threads, each allocating payloads and records: after a burst every arena holds
its peak (0.8 MB more resident on Python 3.7 than with one arena, measured with
bench/memory_bench.py), while the work itself is serialised by the GIL and gains nothing
from separate arenas. So the service asks for one arena before it starts a thread
(`share_one_arena`), and gives free pages back after work (`trim`).

Elsewhere (musl, macOS) both do nothing. A MALLOC_ARENA_MAX in the environment wins.
"""
import logging
import os
import sys
from typing import Any

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h
_libc = None  # type: Any


def _glibc():
    # type: () -> Any
    global _libc
    if _libc is None:
        _libc = False
        if sys.platform.startswith("linux") and os.confstr_names.get("CS_GNU_LIBC_VERSION") is not None:
            try:
                if os.confstr("CS_GNU_LIBC_VERSION"):
                    import ctypes
                    _libc = ctypes.CDLL(None)
                    _libc.malloc_trim.argtypes = [ctypes.c_size_t]
            except (OSError, ValueError, AttributeError):
                _libc = False
    return _libc


def share_one_arena():
    # type: () -> bool
    """One malloc arena for every thread started from now on; False where it cannot be."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    libc = _glibc()
    return bool(libc) and libc.mallopt(M_ARENA_MAX, 1) == 1


def trim():
    # type: () -> bool
    """Give the allocator's free pages back to the system; True if some were."""
    libc = _glibc()
    return bool(libc) and libc.malloc_trim(0) == 1
