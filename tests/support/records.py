"""Building and reading storage records in tests."""
from thingsboard_gateway.storage.record import Record  # noqa: F401 (re-exported)


def rec(seq, device="d", attributes=None):
    """A record carrying telemetry {"seq": seq} at ts = seq."""
    return Record.build(device, "t", [{"ts": seq, "values": {"seq": seq}}], attributes)


def recs(n, start=0):
    return [rec(i) for i in range(start, start + n)]


def seq_of(record):
    return record.telemetry_entries()[0]["values"]["seq"]
