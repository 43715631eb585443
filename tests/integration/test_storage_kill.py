"""A process writing file storage is SIGKILLed at random moments: every record whose commit
was reported before the kill is there after reopening, in order."""
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from thingsboard_gateway.storage.file import FileEventStorage
from tests.support.gateway import ROOT
from tests.support.records import drain

pytestmark = pytest.mark.slow

ROUNDS = 20


def run_and_kill(folder, start, after):
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.storage_writer", folder, str(start)],
                            stdout=subprocess.PIPE, universal_newlines=True, env=env, cwd=ROOT)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout))
    reader.start()
    time.sleep(after)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    reader.join(10)
    proc.stdout.close()
    committed = max([int(l.split()[1]) for l in lines if l.startswith("C")] or [start - 1])
    # Records up to the last `a` may have been acked durably; those after it must all be there.
    maybe_acked = max([int(l.split()[1]) for l in lines if l.startswith("a")] or [start - 1])
    return committed, maybe_acked


def test_sigkill_never_loses_a_committed_record(tmp_path):
    folder = str(tmp_path / "storage")
    rng = random.Random(1234)
    start = 0
    for round_no in range(ROUNDS):
        committed, acked = run_and_kill(folder, start, rng.uniform(0.4, 1.2))
        storage = FileEventStorage(folder, max_records_per_file=200, max_file_count=1000)
        got = drain(storage)
        storage.commit()
        storage.close()
        assert got == sorted(set(got)), "round %d: order or duplicates" % round_no
        missing = set(range(acked + 1, committed + 1)) - set(got)
        assert not missing, "round %d lost committed records %s" % (round_no, sorted(missing)[:10])
        assert committed >= start, "round %d: the writer committed nothing" % round_no
        start = max(got + [committed]) + 1
