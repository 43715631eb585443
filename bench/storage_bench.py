#!/usr/bin/env python3
"""Storage benchmark: file and sqlite storage against a floor of plain os.write + fsync.

For each: records/s for put+commit (driven like the storage-writer thread: groups of
--group records, commit when commit_wait() says so, i.e. every commit_records records or
commit_interval), records/s for get_batch+ack (with the commits that persist acks),
fsyncs per 1,000 records, bytes on disk per record. The floor appends the same framed
bytes with os.write and fsyncs at the same cadence. Prints one JSON line per storage
and a summary line.

  python bench/storage_bench.py [--records 50000] [--dir /path/on/the/disk/to/test]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from thingsboard_gateway.storage import frames  # noqa: E402
from thingsboard_gateway.storage.file import FileEventStorage  # noqa: E402
from thingsboard_gateway.storage.record import Record  # noqa: E402
from thingsboard_gateway.storage.sqlite import SqliteEventStorage  # noqa: E402


def record(i):
    """A record the size of the relay benchmark's (one device message, five values),
    serialized as producers hand it over (storage/record.py)."""
    return Record.build("SN-%03d" % (i % 100), "bench-sensor",
                        [{"ts": 1700000000000 + i, "values": {"temperature": 20.5, "humidity": 55.25, "seq": i,
                                                              "sent": 1700000000.123}}], {"model": "TH-100"})


def disk_bytes(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _, names in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, n)) for n in names)
    return total


def drive_puts(storage, records, group):
    start = time.perf_counter()
    for i in range(0, len(records), group):
        storage.put(records[i:i + group])
        wait = storage.commit_wait()
        if wait is not None and wait <= 0:
            storage.commit()
    storage.commit()
    return time.perf_counter() - start


def drive_reads(storage, total, batch_size):
    start = time.perf_counter()
    read = 0
    while read < total:
        batch = storage.get_batch(batch_size, timeout=0)
        if batch is None:
            break
        storage.ack(batch)
        read += len(batch)
        wait = storage.commit_wait()
        if wait is not None and wait <= 0:
            storage.commit()
    storage.commit()
    return time.perf_counter() - start, read


def measure(name, make, path, records, group, batch_size):
    storage = make()
    put_seconds = drive_puts(storage, records, group)
    put_fsyncs = storage.fsyncs
    size = disk_bytes(path)
    read_seconds, read = drive_reads(storage, len(records), batch_size)
    storage.close()
    return {"storage": name, "records": len(records), "put_commit_per_s": round(len(records) / put_seconds),
            "get_ack_per_s": round(read / read_seconds), "read": read,
            "fsyncs_per_1000_put": round(put_fsyncs * 1000.0 / len(records), 2),
            "fsyncs_per_1000_total": round(storage.fsyncs * 1000.0 / len(records), 2),
            "bytes_per_record": round(size / float(len(records)), 1)}


def floor(path, records, commit_records):
    """os.write of the same framed bytes, one fsync per commit_records (the default cadence)."""
    chunks = [frames.encode(r.encode()) for r in records]
    fd = os.open(os.path.join(path, "floor.dat"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    fsyncs = 0
    start = time.perf_counter()
    for i in range(0, len(chunks), commit_records):
        os.write(fd, b"".join(chunks[i:i + commit_records]))
        os.fsync(fd)
        fsyncs += 1
    seconds = time.perf_counter() - start
    os.close(fd)
    return {"storage": "floor (os.write+fsync)", "records": len(records),
            "put_commit_per_s": round(len(records) / seconds),
            "fsyncs_per_1000_put": round(fsyncs * 1000.0 / len(records), 2),
            "bytes_per_record": round(sum(map(len, chunks)) / float(len(records)), 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=50000)
    ap.add_argument("--group", type=int, default=100, help="records per put (as the writer takes them)")
    ap.add_argument("--batch", type=int, default=100, help="records per get_batch")
    ap.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = ap.parse_args()
    records = [record(i) for i in range(args.records)]
    base = tempfile.mkdtemp(prefix="storage-bench-", dir=args.dir)
    try:
        results = [floor(base, records, 500)]
        folder = os.path.join(base, "file")
        results.append(measure("file", lambda: FileEventStorage(folder, max_records_per_file=10000,
                                                                max_file_count=1000),
                               folder, records, args.group, args.batch))
        db = os.path.join(base, "sqlite", "data.db")
        results.append(measure("sqlite", lambda: SqliteEventStorage(db), os.path.dirname(db), records, args.group,
                               args.batch))
        for result in results:
            print(json.dumps(result))
        ratio = results[1]["put_commit_per_s"] / float(results[0]["put_commit_per_s"])
        print(json.dumps({"summary": "file put+commit vs floor", "ratio": round(ratio, 2),
                          "target_ratio": 0.5, "file_fsyncs_per_1000_total": results[1]["fsyncs_per_1000_total"],
                          "target_fsyncs_per_1000": 10}))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
