"""Device payloads read as json.loads reads them, the common ones in fewer steps
(conversion/payload_json.py)."""
import json

import pytest
from hypothesis import given, settings, strategies as st

from thingsboard_gateway.conversion.payload_json import loads

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                           max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(json_values, st.sampled_from(["", " ", "\n", "\r\n\t "]), st.sampled_from(["utf-8", "utf-16", "utf-32"]))
def test_the_same_value_as_json_loads(value, trailing, encoding):
    payload = (json.dumps(value, ensure_ascii=False) + trailing).encode(encoding, "surrogatepass")
    assert loads(payload) == json.loads(payload)


@pytest.mark.parametrize("payload", [b'{"a": 1} x', b'{"a": 1}{"b": 2}', b'{"a": ', b'[1, 2', b"{'a': 1}",
                                     b'{"a": "\xff"}', b"", b"  ", b'{"a": NaNx}'])
def test_the_same_error_as_json_loads(payload):
    with pytest.raises(ValueError) as ours:
        loads(payload)
    with pytest.raises(ValueError) as theirs:
        json.loads(payload)
    assert type(ours.value) is type(theirs.value) and str(ours.value) == str(theirs.value)


def test_text_and_other_starts_are_json_loads_own():
    assert loads('{"a": [1]}') == {"a": [1]}
    assert loads(b' {"a": 1}') == {"a": 1}
    assert loads(b"\xef\xbb\xbf{\"a\": 1}") == {"a": 1}   # a UTF-8 byte order mark
    assert loads(b"42") == 42


def test_nesting_too_deep_raises_recursion_error_as_json_loads_does():
    deep = b"[" * 100000 + b"]" * 100000
    with pytest.raises(RecursionError):
        json.loads(deep)
    with pytest.raises(RecursionError):
        loads(deep)
