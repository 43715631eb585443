"""The acknowledged-prefix arithmetic every storage uses."""
from hypothesis import given
from hypothesis import strategies as st

from thingsboard_gateway.storage.base import AckedPrefix


def test_out_of_order_acks_release_only_a_prefix():
    acks = AckedPrefix()
    assert acks.ack(5, 10, "p10") is None
    assert acks.ack(0, 5, "p5") == (10, "p10")
    assert acks.head == 10
    assert acks.ack(0, 5, "p5") is None          # twice: nothing more


@given(st.lists(st.integers(1, 5), min_size=1, max_size=20), st.randoms())
def test_any_ack_order_releases_everything_once(sizes, rnd):
    ranges, start = [], 0
    for size in sizes:
        ranges.append((start, start + size))
        start += size
    rnd.shuffle(ranges)
    acks = AckedPrefix()
    released = sum((acks.ack(a, b, b) or (0, None))[0] for a, b in ranges)
    assert released == start and acks.head == start
