"""The serial Framer: frames are cut right however the bytes arrive, and its buffer stays bounded."""
from hypothesis import given, settings, strategies as st

from thingsboard_gateway.conversion.framing import Framer


@given(st.lists(st.binary(max_size=30).filter(lambda b: b"\n" not in b), max_size=20),
       st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=10))
@settings(max_examples=200, deadline=None)
def test_frames_survive_any_chunking(frames, cuts):
    stream = b"".join(f + b"\n" for f in frames)
    framer, out, position, i = Framer(b"\n", max_length=64), [], 0, 0
    while position < len(stream):
        size = cuts[i % len(cuts)]
        out += framer.feed(stream[position:position + size])
        position, i = position + size, i + 1
    assert out == frames and framer.pending() == 0


@given(st.lists(st.binary(max_size=300), max_size=30))
@settings(max_examples=200, deadline=None)
def test_buffer_never_passes_the_bound(chunks):
    framer = Framer(b"\r\n", max_length=50)
    for chunk in chunks:
        for frame in framer.feed(chunk):
            assert len(frame) <= 50
        assert len(framer._buffer) <= 50 + 1


def test_overlong_frame_is_counted_once_and_the_next_one_kept():
    framer = Framer(b"\n", max_length=8)
    assert framer.feed(b"x" * 20) == []
    assert framer.feed(b"y" * 20 + b"\nok\n") == [b"ok"]
    assert framer.overlong == 1


def test_fixed_length_frames():
    framer = Framer(b"", length=3)
    assert framer.feed(b"abcde") == [b"abc"] and framer.feed(b"f") == [b"def"]
