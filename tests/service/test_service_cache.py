"""The credential cache alone, on a stepped clock: trust, TTL, the generation guard against
caching what was read before a drop, per-token invalidation, LRU eviction, clear."""

from __future__ import annotations

from datetime import UTC, datetime

from apitokens.domain.tokens import SYSTEM, Actor, Credential, Token
from apitokens.service.cache import CredentialCache

T0 = datetime(2030, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now

    def step(self, seconds: float) -> None:
        self.now += seconds


def credential(token_number: int, digest_number: int | None = None) -> Credential:
    token = Token(
        id=f"00000000-0000-4000-8000-{token_number:012d}",
        name=f"token-{token_number}",
        permissions=("TokenRead",),
        allowed_cidr_blocks=(),
        created_at=T0,
        created_by=Actor("cli", SYSTEM),
    )
    digest = f"{digest_number if digest_number is not None else token_number:064x}"
    return Credential.of(token, digest, None)


def trusted_cache(clock: Clock, **kwargs: float) -> tuple[CredentialCache, list[str]]:
    clears: list[str] = []
    cache = CredentialCache(clock=clock, on_clear=clears.append, **kwargs)  # type: ignore[arg-type]
    cache.trusted = True
    return cache, clears


def test_a_new_cache_is_empty_and_not_trusted() -> None:
    cache = CredentialCache(clock=Clock())
    assert cache.trusted is False
    assert len(cache) == 0
    cache.put(credential(1), cache.generation)
    assert len(cache) == 1
    assert cache.get(credential(1).digest) is None  # not trusted: entries are not used
    cache.trusted = True
    assert cache.get(credential(1).digest) == credential(1)


def test_a_put_entry_is_found_by_its_digest_only() -> None:
    cache, _ = trusted_cache(Clock())
    cache.put(credential(1), cache.generation)
    assert cache.get(credential(1).digest) == credential(1)
    assert cache.get(credential(2).digest) is None
    assert len(cache) == 1


def test_an_entry_lives_ttl_seconds_and_then_goes() -> None:
    clock = Clock()
    cache, _ = trusted_cache(clock, ttl=10.0)
    cache.put(credential(1), cache.generation)
    clock.step(10.0)
    assert cache.get(credential(1).digest) == credential(1)  # exactly ttl old: still good
    clock.step(0.001)
    assert cache.get(credential(1).digest) is None
    assert len(cache) == 0  # an expired entry is removed, not only skipped
    assert cache.drop([credential(1).token.id]) == 0


def test_a_get_does_not_extend_the_ttl() -> None:
    clock = Clock()
    cache, _ = trusted_cache(clock, ttl=10.0)
    cache.put(credential(1), cache.generation)
    clock.step(6)
    assert cache.get(credential(1).digest) == credential(1)
    clock.step(6)
    assert cache.get(credential(1).digest) is None


def test_the_default_ttl_is_a_minute() -> None:
    clock = Clock()
    cache, _ = trusted_cache(clock)
    cache.put(credential(1), cache.generation)
    clock.step(60.0)
    assert cache.get(credential(1).digest) == credential(1)
    clock.step(0.001)
    assert cache.get(credential(1).digest) is None


def test_what_was_read_before_a_drop_is_not_cached_after_it() -> None:
    cache, _ = trusted_cache(Clock())
    read_at = cache.generation  # a lookup reads the database ...
    cache.drop([credential(1).token.id])  # ... the token is revoked meanwhile ...
    cache.put(credential(1), read_at)  # ... and the stale read must not be cached
    assert cache.get(credential(1).digest) is None
    assert len(cache) == 0
    cache.put(credential(1), cache.generation)  # a lookup after the drop is cached
    assert cache.get(credential(1).digest) == credential(1)


def test_every_drop_and_clear_moves_the_generation_on() -> None:
    cache, _ = trusted_cache(Clock())
    generations = [cache.generation]
    cache.drop([])
    generations.append(cache.generation)
    cache.drop(["no such token"])
    generations.append(cache.generation)
    cache.clear()
    generations.append(cache.generation)
    assert len(set(generations)) == 4
    for stale in generations[:-1]:
        cache.put(credential(1), stale)
        assert len(cache) == 0
    cache.put(credential(1), generations[-1])
    assert len(cache) == 1


def test_a_put_does_not_move_the_generation() -> None:
    cache, _ = trusted_cache(Clock())
    before = cache.generation
    cache.put(credential(1), before)
    cache.put(credential(2), before)
    assert cache.generation == before
    assert len(cache) == 2


def test_drop_removes_every_value_of_the_named_tokens_only() -> None:
    cache, clears = trusted_cache(Clock())
    current, rotated_out, other = credential(1), credential(1, 11), credential(2)
    for entry in (current, rotated_out, other):
        cache.put(entry, cache.generation)
    assert cache.drop([current.token.id, "no such token"]) == 2
    assert cache.get(current.digest) is None
    assert cache.get(rotated_out.digest) is None
    assert cache.get(other.digest) == other
    assert len(cache) == 1
    assert clears == ["change"]
    assert cache.drop([current.token.id]) == 0
    assert cache.drop([other.token.id]) == 1
    assert clears == ["change", "change"]  # counted when something was dropped
    assert len(cache) == 0


def test_drop_and_clear_without_a_listener() -> None:
    cache = CredentialCache(clock=Clock())
    cache.put(credential(1), cache.generation)
    assert cache.drop([credential(1).token.id]) == 1
    cache.put(credential(2), cache.generation)
    cache.clear("lost")
    assert len(cache) == 0


def test_clear_removes_everything_and_says_why() -> None:
    cache, clears = trusted_cache(Clock())
    cache.put(credential(1), cache.generation)
    cache.put(credential(2), cache.generation)
    cache.clear("unreachable")
    assert len(cache) == 0
    assert cache.get(credential(1).digest) is None
    cache.clear()
    assert clears == ["unreachable", "change"]
    assert cache.drop([credential(1).token.id, credential(2).token.id]) == 0


def test_a_full_cache_evicts_the_least_recently_used_entry() -> None:
    cache, _ = trusted_cache(Clock(), max_entries=3)
    for number in (1, 2, 3):
        cache.put(credential(number), cache.generation)
    assert cache.get(credential(1).digest) == credential(1)  # 1 is now the most recent
    cache.put(credential(4), cache.generation)  # full: 2 goes
    assert len(cache) == 3
    assert cache.get(credential(2).digest) is None
    assert [cache.get(credential(n).digest) for n in (1, 3, 4)] == [
        credential(1),
        credential(3),
        credential(4),
    ]
    assert cache.drop([credential(2).token.id]) == 0
    cache.put(credential(5), cache.generation)  # full again: 1 is now the oldest use
    assert cache.get(credential(1).digest) is None
    assert len(cache) == 3


def test_evicted_and_expired_entries_leave_no_index_behind() -> None:
    # The per-token index is bounded by the entries: churn cannot grow it without end.
    clock = Clock()
    cache, _ = trusted_cache(clock, ttl=5.0, max_entries=2)
    for number in range(1, 6):
        cache.put(credential(number), cache.generation)
    cache.put(credential(5, 55), cache.generation)  # a second value of token 5
    assert sorted(cache._by_token) == [credential(5).token.id]
    assert cache._by_token[credential(5).token.id] == {credential(5).digest, "0" * 62 + "37"}
    clock.step(6)
    assert cache.get(credential(5).digest) is None
    assert cache._by_token == {credential(5).token.id: {"0" * 62 + "37"}}
    assert cache.get("0" * 62 + "37") is None
    assert cache._by_token == {}
    assert len(cache) == 0


def test_removing_an_entry_that_is_gone_is_harmless() -> None:
    # A get that finds an entry expired removes it; another get may have done so first.
    clock = Clock()
    cache, _ = trusted_cache(clock, ttl=1.0)
    cache._remove("0" * 64)
    cache.put(credential(1), cache.generation)
    cache._remove(credential(1).digest)
    cache._remove(credential(1).digest)
    assert len(cache) == 0
    assert cache._by_token == {}
