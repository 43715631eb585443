"""BatchQueue: bounded, batches taken in one go, lingering for a trickle."""
import threading

from thingsboard_gateway.runtime.batchqueue import BatchQueue


def test_get_batch_takes_everything_waiting_in_order_up_to_the_maximum():
    q = BatchQueue(10)
    for i in range(7):
        assert q.put_nowait(i)
    assert q.get_batch(5, timeout=0) == [0, 1, 2, 3, 4]
    assert q.get_batch(5, timeout=0) == [5, 6]
    assert q.get_batch(5, timeout=0) == []


def test_put_refuses_when_full_until_a_batch_is_taken():
    q = BatchQueue(2)
    assert q.put_nowait("a") and q.put_nowait("b")
    assert not q.put("c", timeout=0.01)
    assert q.get_batch(1, timeout=0) == ["a"]
    assert q.put_nowait("c")
    assert len(q) == 2


def test_a_blocked_producer_is_released_by_the_consumer():
    q = BatchQueue(1)
    q.put_nowait(1)
    done = []
    producer = threading.Thread(target=lambda: done.append(q.put(2, timeout=10)))
    producer.start()
    assert q.get_batch(10, timeout=1) == [1]
    producer.join(10)
    assert done == [True] and q.get_batch(10, timeout=0) == [2]


def test_linger_gathers_what_arrives_meanwhile_and_stop_cuts_it_short():
    q = BatchQueue(100)
    stop = threading.Event()
    q.put_nowait("first")

    class Stop(object):  # an event whose wait delivers more items, as producers would
        def wait(self, seconds):
            assert seconds == 5.0
            q.put_nowait("second")
            q.put_nowait("third")
            return stop.wait(0)

    assert q.get_batch(10, timeout=1, linger=5.0, stop=Stop()) == ["first", "second", "third"]


def test_no_linger_when_a_full_batch_is_already_waiting():
    q = BatchQueue(100)
    for i in range(3):
        q.put_nowait(i)

    class Never(object):
        def wait(self, seconds):
            raise AssertionError("lingered although the batch was full")

    assert q.get_batch(3, timeout=1, linger=5.0, stop=Never()) == [0, 1, 2]


def test_get_batch_times_out_empty():
    assert BatchQueue(5).get_batch(5, timeout=0.01) == []
