"""Subprocess used by the SIGKILL test: writes, commits and acks file storage forever,
printing what is durable: `C <seq>` after a commit, `a <seq>` before acking up to seq and
`A <seq>` once that ack was persisted."""
import sys

from thingsboard_gateway.storage.file import FileEventStorage
from tests.support.records import recs, seq_of


def main(folder, start):
    storage = FileEventStorage(folder, max_records_per_file=200, max_file_count=1000)
    seq = start
    round_no = 0
    while True:
        storage.put(recs(50, seq))
        seq += 50
        storage.commit()
        print("C %d" % (seq - 1), flush=True)
        round_no += 1
        if round_no % 3 == 0:
            batch = storage.get_batch(30, timeout=0)
            if batch is not None:
                print("a %d" % seq_of(batch.records[-1]), flush=True)  # may be durable from now on
                storage.ack(batch)
                storage.commit()
                print("A %d" % seq_of(batch.records[-1]), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
