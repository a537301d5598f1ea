"""The filter of stored digests alone: never "not stored" for a stored digest, sizing,
fullness, rebuilds, and where a digest's bits go (fixed: the filter is rebuilt per process,
but a change here must be deliberate)."""

from __future__ import annotations

import hashlib

from apitokens.service.known import BITS_PER_ENTRY, HASHES, MIN_CAPACITY, KnownDigests


def digest(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def test_the_parameters() -> None:
    assert (HASHES, BITS_PER_ENTRY, MIN_CAPACITY) == (7, 10, 1024)


def test_before_it_is_built_everything_might_be_stored() -> None:
    known = KnownDigests()
    assert known.ready is False
    assert known.might_contain(digest(1)) is True
    known.add(digest(1))
    assert known.ready is False
    assert known.might_contain(digest(2)) is True


def test_a_built_filter_knows_every_stored_digest_and_few_others() -> None:
    known = KnownDigests()
    stored = [digest(n) for n in range(1000)]
    known.rebuild(iter(stored), len(stored))
    assert known.ready is True
    assert known.count == 1000
    assert known.capacity == 2000  # sized for growth: twice what is expected
    assert all(known.might_contain(d) for d in stored)
    others = [digest(n) for n in range(1000, 11000)]
    false_positives = sum(known.might_contain(d) for d in others)
    assert false_positives < 100  # ~0.1 % at half capacity; 1 % would be a bug
    known.add(digest(5000))
    assert known.might_contain(digest(5000))
    assert known.count == 1001


def test_a_digest_sets_seven_bits_taken_from_its_own_bytes() -> None:
    known = KnownDigests()
    known.rebuild(iter(()), 0)
    assert known.capacity == MIN_CAPACITY
    one = "00000001" * 8  # every slice is 1: one bit, set seven times
    known.add(one)
    assert known._bits[0] == 0b10
    assert sum(bin(byte).count("1") for byte in known._bits) == 1
    spread = "".join(f"{n * 1000:08x}" for n in range(1, 8)) + "ffffffff"
    known.add(spread)
    assert sum(bin(byte).count("1") for byte in known._bits) == 1 + 7
    size = MIN_CAPACITY * BITS_PER_ENTRY
    assert len(known._bits) == size // 8
    for n in range(1, 8):
        position = n * 1000 % size
        assert known._bits[position >> 3] & (1 << (position & 7))
    assert known.might_contain(spread)
    assert not known.might_contain("".join(f"{n * 1000 + 1:08x}" for n in range(1, 9)))


def test_the_filter_is_full_past_its_capacity_and_a_rebuild_resizes_it() -> None:
    known = KnownDigests(10)
    assert known.capacity == MIN_CAPACITY  # never smaller than the minimum
    known.rebuild(iter(()), 600)
    assert known.capacity == 1200
    for n in range(1200):
        known.add(digest(n))
    assert known.full is False  # at capacity: not yet
    known.add(digest(1200))
    assert known.full is True
    known.rebuild((digest(n) for n in range(1201)), 1201)
    assert (known.capacity, known.count, known.full) == (2402, 1201, False)
    assert len(known._bits) == -(-2402 * BITS_PER_ENTRY // 8)
