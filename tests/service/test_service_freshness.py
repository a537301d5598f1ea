"""Cache freshness through the change feed: a write drops only what it changed; a lost
position drops everything; unknown values cost no lookup. Two instances share one store
(memory, SQLite, PostgreSQL), as two servers share one database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from service_harness import Harness, build_harness

from apitokens.domain.errors import InvalidCredentials
from apitokens.domain.permissions import TOKEN_MODIFY, TOKEN_READ
from apitokens.domain.tokens import Principal
from apitokens.domain.values import hash_value
from apitokens.storage.port import Store

MANAGER = (TOKEN_MODIFY, TOKEN_READ)


@pytest.fixture
def other(store: Store) -> Iterator[Harness]:
    """A second instance on the same store."""
    yield build_harness(store)


def _cached(harness: Harness, value: str) -> bool:
    return harness.services.cache.get(hash_value(value)) is not None


def test_a_write_drops_only_the_changed_tokens_entry(
    harness: Harness, other: Harness, admin: Principal
) -> None:
    values = [harness.create(admin, f"t{n}", (TOKEN_READ,)).value for n in range(3)]
    for value in values:
        other.login(value)
    assert all(_cached(other, value) for value in values)

    changed = other.login(values[1]).token.id
    harness.tokens.update(admin, changed, harness.spec("renamed", (TOKEN_READ,)))
    other.services.freshness.apply()

    assert [_cached(other, value) for value in values] == [True, False, True]
    assert other.login(values[1]).token.name == "renamed"  # read again, fresh


def test_delete_and_rotate_on_one_instance_are_refused_by_the_other(
    harness: Harness, other: Harness, admin: Principal
) -> None:
    doomed = harness.create(admin, "doomed", (TOKEN_READ,))
    rotated = harness.create(admin, "rotated", (TOKEN_READ,))
    kept = harness.create(admin, "kept", (TOKEN_READ,))
    for issued in (doomed, rotated, kept):
        other.login(issued.value)

    harness.tokens.delete(admin, doomed.token.id)
    harness.tokens.rotate(admin, rotated.token.id, None)
    other.services.freshness.apply()

    for gone in (doomed.value, rotated.value):
        with pytest.raises(InvalidCredentials):
            other.login(gone)
    assert _cached(other, kept.value)


def test_a_lost_feed_position_drops_everything(
    harness: Harness, other: Harness, admin: Principal
) -> None:
    values = [harness.create(admin, f"t{n}").value for n in range(3)]
    for value in values:
        other.login(value)
    freshness = other.services.freshness
    position = freshness.position
    assert position is not None
    harness.tokens.update(admin, other.login(values[0]).token.id, harness.spec("x"))
    later = harness.clock.now() + timedelta(days=1)
    with harness.store.unit(write=True) as unit:  # the feed pruned past `other`'s position
        unit.changes.record("unrelated", later)
        unit.changes.prune(later)

    freshness.apply()

    assert len(other.services.cache) == 0
    with harness.store.unit() as unit:
        assert freshness.position == unit.changes.head()
    other.login(values[1])  # and it serves again, from the database
    assert _cached(other, values[1])


def test_an_unreadable_feed_distrusts_the_cache_until_read_again(
    harness: Harness, admin: Principal
) -> None:
    value = harness.create(admin, "t").value
    harness.login(value)
    cache, freshness = harness.services.cache, harness.services.freshness
    freshness.lost()
    assert not cache.trusted
    assert cache.get(hash_value(value)) is None
    freshness.apply()
    assert cache.trusted


def test_unknown_values_cost_no_lookup_by_digest(store: Store, admin: Principal) -> None:
    instance = build_harness(store)
    codec = instance.tokens.codec
    looked_up: list[str] = []
    original = type(instance.services.auth)._load

    def spy(self: object, digest: str, ip: str | None) -> object:
        looked_up.append(digest)
        return original(self, digest, ip)  # type: ignore[arg-type]

    instance.services.auth._load = spy.__get__(instance.services.auth)  # type: ignore[method-assign]
    for _ in range(50):
        with pytest.raises(InvalidCredentials):
            instance.login(codec.issue().value)
    assert looked_up == []  # refused by the filter: no lookup by digest, ever


def test_a_value_made_on_another_instance_works_at_once(
    harness: Harness, other: Harness, admin: Principal
) -> None:
    """The other instance's filter does not know the digest yet: it reads the feed first."""
    other.login(harness.bootstrap("warm").value)
    fresh = harness.create(admin, "fresh", (TOKEN_READ,)).value
    assert not other.services.freshness.known.might_contain(hash_value(fresh))
    assert other.login(fresh).token.name == "fresh"


def test_the_cache_evicts_the_least_recently_used_entry(harness: Harness, admin: Principal) -> None:
    cache = harness.services.cache
    cache._max = 2
    first, second, third = (harness.create(admin, f"t{n}").value for n in range(3))
    harness.login(first)
    harness.login(second)
    harness.login(first)  # now `second` is the least recently used
    harness.login(third)
    assert [_cached(harness, value) for value in (first, second, third)] == [True, False, True]
    assert len(cache) == 2
