"""Building and reading storage records in tests."""
from thingsboard_gateway.storage.record import Record  # noqa: F401 (re-exported)


def rec(seq, device="d", attributes=None):
    """A record carrying telemetry {"seq": seq} at ts = seq."""
    return Record.build(device, "t", [{"ts": seq, "values": {"seq": seq}}], attributes)


def recs(n, start=0):
    return [rec(i) for i in range(start, start + n)]


def seq_of(record):
    return record.telemetry_entries()[0]["values"]["seq"]


def drain(storage, ack=True):
    """The seq of every record readable now (acked if `ack`)."""
    out = []
    while True:
        batch = storage.get_batch(1000, timeout=0)
        if batch is None:
            return out
        out.extend(seq_of(r) for r in batch.records)
        if ack:
            storage.ack(batch)
