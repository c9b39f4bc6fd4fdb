"""Parts hashed side by side give the MD5s hashlib gives, whatever their pieces."""

import hashlib
import random

import pytest

from cstor.s3 import md5

try:
    from cstor.s3._md5lanes import md5_lanes
except ImportError:  # installed without a C compiler: only the hashlib path is tested
    BUILT = False
else:
    BUILT = True

built = pytest.mark.skipif(not BUILT, reason="the C extension is built where there is a compiler")

# Around the 64-byte block and the 56-byte padding edge, and larger.
LENGTHS = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 5 * 1024 * 1024 + 3]


def cut(data: bytes, rng: random.Random) -> list[memoryview]:
    """`data` as up to five pieces cut at random places (empty pieces too)."""
    cuts = sorted(rng.randint(0, len(data)) for _ in range(rng.randint(0, 4)))
    view = memoryview(data)
    return [view[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


@built
@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("count", [1, 2, 3, 8, 9, 17])
def test_each_lane_gets_the_md5_of_its_own_message(length: int, count: int) -> None:
    rng = random.Random(length * 100 + count)
    messages = [rng.randbytes(length) for _ in range(count)]
    got = md5_lanes([cut(message, rng) for message in messages])
    assert got == [hashlib.md5(message).digest() for message in messages]


@built
def test_messages_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="one length"):
        md5_lanes([[b"abc"], [b"abcd"]])


@built
def test_a_message_that_is_not_buffers_is_refused() -> None:
    with pytest.raises(TypeError):
        md5_lanes([["text"]])  # type: ignore[list-item]


@pytest.mark.parametrize("side_by_side", [pytest.param(True, marks=built), False])
def test_parts_of_mixed_lengths_come_back_in_order(
    side_by_side: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not side_by_side:  # as installed without a C compiler
        monkeypatch.setattr(md5, "_md5_lanes", None)
    rng = random.Random(7)
    parts = [rng.randbytes(n) for n in (4096, 100, 4096, 4096, 7, 100)]
    assert md5.side_by_side() is side_by_side
    got = md5.md5s_of([cut(part, rng) for part in parts])
    assert got == [hashlib.md5(part).hexdigest() for part in parts]
