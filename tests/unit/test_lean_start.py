"""runtime/lean_start.py: what paho's import does that the gateway never needs is skipped,
and whoever does need it still gets it (in a fresh interpreter each, since both change
process-wide state)."""
import os
import subprocess
import sys
import textwrap

import pytest

from tests.support.gateway import ROOT

PYTHON37 = os.path.join(ROOT, ".venv37", "bin", "python")


def run(code, python=sys.executable):
    done = subprocess.run([python, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=60)
    assert done.returncode == 0, done.stdout
    return done.stdout


def test_paho_imports_without_urllib_request_and_users_of_it_still_get_it():
    out = run("""
        import sys, threading
        from thingsboard_gateway.runtime import lean_start
        assert lean_start.defer_urllib_request()
        import paho.mqtt.client
        assert "http.client" not in sys.modules and "email.parser" not in sys.modules
        import urllib.request  # an import statement alone does not load it
        assert "http.client" not in sys.modules
        got = []
        def use():
            got.append(urllib.request.Request("http://127.0.0.1/").full_url)
        threads = [threading.Thread(target=use) for _ in range(8)]  # first use from many threads at once
        for t in threads: t.start()
        for t in threads: t.join()
        from urllib.request import urlopen
        assert got == ["http://127.0.0.1/"] * 8 and callable(urlopen)
        assert type(sys.modules["urllib.request"]).__name__ == "module" and sys.modules["urllib"].request.urlopen
        print("ok")
    """)
    assert out.strip() == "ok"


def test_not_deferred_once_loaded():
    assert run("""
        import urllib.request
        from thingsboard_gateway.runtime import lean_start
        print(lean_start.defer_urllib_request())
    """).strip() == "False"


@pytest.mark.skipif(not os.path.exists(PYTHON37), reason="no Python 3.7 environment (tests/py37/envs.sh)")
def test_platform_uname_without_a_subprocess_on_python37():
    out = run("""
        import platform, subprocess, os
        expected = platform.uname()  # the standard way: runs `uname -p`
        platform._uname_cache = None
        from thingsboard_gateway.runtime import lean_start
        assert lean_start.skip_uname_subprocess()
        def refuse(*args, **kwargs):
            raise AssertionError("a subprocess was started")
        os.popen = subprocess.Popen = refuse
        assert platform.system() == "Linux"
        print(platform.uname()[:5] == expected[:5] and platform.uname().processor == "")
    """, python=PYTHON37)
    assert out.strip() == "True"  # the same, and the processor as glibc systems report it ("unknown": "")


def test_nothing_changes_on_python39_and_later():
    if sys.version_info < (3, 9):
        pytest.skip("this interpreter is older than 3.9")
    assert run("""
        from thingsboard_gateway.runtime import lean_start
        print(lean_start.skip_uname_subprocess())
    """).strip() == "False"
