"""The bounded memo of the per-message path (runtime/memo.py)."""
from thingsboard_gateway.runtime.memo import remembered


def test_made_once_per_key_and_emptied_at_its_limit():
    made = []

    def make(key):
        made.append(key)
        return key * 2

    cache = {}
    assert [remembered(cache, k, make, 3) for k in (1, 2, 1, 3, 2)] == [2, 4, 2, 6, 4]
    assert made == [1, 2, 3]
    assert remembered(cache, 4, make, 3) == 8  # full: emptied, then 4 kept
    assert cache == {4: 8}
    assert remembered(cache, 1, make, 3) == 2 and made == [1, 2, 3, 4, 1]
