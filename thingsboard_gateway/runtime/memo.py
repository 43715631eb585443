"""A bounded memo for the per-message path (pure): what was worked out for a key (a
topic, a device name), kept in a dict that is cleared when it reaches its limit, so that
keys without end (ids in topics) cannot grow it without end."""
from typing import Any, Callable, Dict


def remembered(cache, key, make, limit):
    # type: (Dict[Any, Any], Any, Callable[[Any], Any], int) -> Any
    """make(key), kept in `cache` (emptied first when it holds `limit` entries). Not locked:
    one thread's cache, or a value any thread would make alike (a lost entry is made again)."""
    try:
        return cache[key]
    except KeyError:
        pass
    if len(cache) >= limit:
        cache.clear()
    value = cache[key] = make(key)
    return value
