"""PUBACKs leave in the order the messages arrived, whatever order they are done in."""
import random

from thingsboard_gateway.connectors.mqtt.acks import AckSequencer


def test_acks_follow_arrival_order():
    sent = []
    acks = AckSequencer(lambda acks: sent.extend(mid for mid, _ in acks))
    seqs = [acks.received() for _ in range(6)]
    order = list(range(6))
    random.Random(3).shuffle(order)
    for i in order:
        acks.done(seqs[i], 100 + i, 1)
    assert sent == [100 + i for i in range(6)]


def test_nothing_leaves_before_the_oldest_is_done():
    sent = []
    acks = AckSequencer(lambda acks: sent.extend(mid for mid, _ in acks))
    first, second = acks.received(), acks.received()
    acks.done(second, 2, 1)
    assert sent == []
    acks.done(first, 1, 1)
    assert sent == [1, 2]
