"""`thingsboard-gateway storage inspect|verify|repair` on real folders."""
import json

from thingsboard_gateway.storage.file import FileEventStorage
from thingsboard_gateway.storage.segments import segment_path
from thingsboard_gateway.storage.sqlite import SqliteEventStorage
from tests.support.gateway import run_cli
from tests.support.records import recs


def config(tmp_path, storage):
    path = tmp_path / "tb_gateway.json"
    path.write_text(json.dumps({"thingsboard": {"host": "h", "security": {"accessToken": "t"}},
                                "storage": storage}))
    return str(path)


def filled(folder, n=20):
    storage = FileEventStorage(folder, max_records_per_file=100)
    storage.put(recs(n))
    storage.close()


def test_inspect_verify_repair_a_torn_folder(tmp_path):
    folder = str(tmp_path / "data")
    filled(folder)
    path = segment_path(folder, 0)
    with open(path, "r+b") as f:
        f.truncate(f.seek(0, 2) - 3)
    cfg = config(tmp_path, {"type": "file", "data_folder_path": folder})

    inspect = run_cli(["storage", "inspect", "--config", cfg])
    assert inspect.returncode == 0
    assert "records waiting: 19" in inspect.stdout and "data_0.dat" in inspect.stdout
    assert "old" in inspect.stdout

    verify = run_cli(["storage", "verify", "--config", cfg])
    assert verify.returncode == 1
    assert "data_0.dat offset" in verify.stdout and "torn tail" in verify.stdout

    repair = run_cli(["storage", "repair", "--config", cfg])
    assert repair.returncode == 0 and "records dropped by repair: 1" in repair.stdout

    again = run_cli(["storage", "verify", "--config", cfg])
    assert again.returncode == 0 and "every frame is intact" in again.stdout


def test_refuses_while_the_gateway_holds_the_storage(tmp_path):
    folder = str(tmp_path / "data")
    holder = FileEventStorage(folder)
    try:
        result = run_cli(["storage", "verify", "--config", config(tmp_path, {"type": "file",
                                                                            "data_folder_path": folder})])
        assert result.returncode == 2
        assert "refused: storage %s is in use by another process" % folder in result.stderr
    finally:
        holder.close()


def test_sqlite_inspect(tmp_path):
    db = str(tmp_path / "data.db")
    storage = SqliteEventStorage(db)
    storage.put(recs(7))
    storage.close()
    result = run_cli(["storage", "inspect", "--config", config(tmp_path, {"type": "sqlite", "data_file_path": db})])
    assert result.returncode == 0 and "records waiting: 7" in result.stdout and "integrity:       ok" in result.stdout
