"""Start-up work that paho-mqtt's import does and the gateway never needs (issue 36).

Measured on Python 3.7 (bench/coldstart_bench.py, py-spy over 6 starts): importing
paho.mqtt.client costs about 36 ms of CPU, 0.36 s at a tenth of a core, of which

* `import urllib.request` (with http.client, email, tempfile, shutil, bz2, lzma: ~15 ms):
  paho reads proxy settings from it, and only when PySocks is installed. Where PySocks is
  not, `defer_urllib_request` puts a stand-in in its place: the module is imported for real
  on the first use of one of its attributes, by whoever uses it (the HTTP connectors).
* `platform.system()` at import: on Python < 3.9, platform.uname() runs `uname -p` in a
  subprocess (a fork of the whole interpreter) to learn the processor name, which glibc
  systems answer "unknown" and platform then reports as "". `skip_uname_subprocess` fills
  platform's cache from os.uname() with that same "" first.

Both are called once by the CLI, before the service is imported. Elsewhere (a library
user, Python 3.9+ for the second) they change nothing.
"""
import importlib
import importlib.machinery
import os
import sys
import threading
import types
from typing import Any


class _Deferred(types.ModuleType):
    """Stands for a module until one of its attributes is asked for: then imports it (once,
    under a lock), takes its contents and puts it in its place. `__spec__` is None, so an
    `import` statement that finds it does not load it (importlib's LazyLoader would)."""

    def __init__(self, name):
        # type: (str) -> None
        super(_Deferred, self).__init__(name)
        self.__spec__ = None
        self.__dict__["_lock"] = threading.Lock()

    def __getattr__(self, attribute):
        # type: (str) -> Any
        if attribute.startswith("__") and attribute.endswith("__"):
            raise AttributeError(attribute)
        with self.__dict__["_lock"]:
            name = self.__name__
            if sys.modules.get(name) is self:
                del sys.modules[name]
                real = importlib.import_module(name)
                parent, _, child = name.rpartition(".")
                setattr(sys.modules[parent], child, real)
                self.__dict__.update(real.__dict__)
        return getattr(sys.modules[self.__name__], attribute)


def defer_urllib_request():
    # type: () -> bool
    """urllib.request deferred unless it is loaded already or PySocks is installed."""
    if "urllib.request" in sys.modules or importlib.machinery.PathFinder.find_spec("socks") is not None:
        return False  # (with PySocks, paho uses urllib.request at every connect)
    import urllib
    stand_in = _Deferred("urllib.request")
    sys.modules["urllib.request"] = stand_in
    urllib.request = stand_in  # type: ignore[attr-defined]  (what the import system binds)
    return True


def skip_uname_subprocess():
    # type: () -> bool
    """platform.uname() without `uname -p` in a subprocess (Python < 3.9, Linux)."""
    if sys.version_info >= (3, 9) or not sys.platform.startswith("linux"):
        return False
    import platform
    result = getattr(platform, "uname_result", None)
    if getattr(platform, "_uname_cache", True) is not None or result is None or len(result._fields) != 6:
        return False
    system, node, release, version, machine = os.uname()
    platform._uname_cache = result(system, node, release, version, machine, "")  # type: ignore
    return True


def prepare():
    # type: () -> None
    defer_urllib_request()
    skip_uname_subprocess()
