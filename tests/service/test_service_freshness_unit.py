"""Freshness alone, on a real in-memory store that counts its reads and a stepped monotonic
clock: when a notification causes a read, shared reads, losing the position, batches."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from apitokens.domain.tokens import SYSTEM, Actor, Token
from apitokens.service import freshness as freshness_module
from apitokens.service.cache import CredentialCache
from apitokens.service.freshness import Freshness
from apitokens.service.known import KnownDigests
from apitokens.storage.memory import MemoryStore, MemoryUnit

T0 = datetime(2030, 1, 1, tzinfo=UTC)


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.broken = False

    @contextlib.contextmanager
    def unit(self, *, write: bool = False) -> Iterator[MemoryUnit]:
        if self.broken:
            raise RuntimeError("database gone")
        if not write:
            self.reads += 1
        with super().unit(write=write) as unit:
            yield unit


class Seconds:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Parts:
    def __init__(self) -> None:
        self.store = CountingStore()
        self.clears: list[str] = []
        self.cache = CredentialCache(on_clear=self.clears.append)
        self.seconds = Seconds()
        self.freshness = Freshness(self.store, self.cache, KnownDigests(), self.seconds)

    def change(self, number: int, digest: str | None = None) -> None:
        with self.store.unit(write=True) as unit:
            unit.changes.record(f"token-{number}", T0, digest)


def started() -> Parts:
    parts = Parts()
    parts.change(1)
    parts.freshness.apply()
    assert parts.freshness.position == 1
    assert parts.cache.trusted is True
    parts.clears.clear()
    parts.store.reads = 0
    return parts


def test_a_notification_reads_the_feed_only_when_it_is_news() -> None:
    parts = started()
    parts.freshness.notified(1)  # where we are already
    parts.freshness.notified(0)  # behind us
    assert parts.store.reads == 0
    parts.change(2)
    parts.freshness.notified(2)
    assert parts.store.reads == 1
    assert parts.freshness.position == 2
    parts.freshness.notified(None)  # unknown: read to be sure
    assert parts.store.reads == 2


def test_a_notification_without_a_position_of_our_own_reads() -> None:
    parts = Parts()
    parts.change(1)
    parts.freshness.notified(1)
    assert parts.freshness.position == 1
    assert parts.cache.trusted is True


def test_losing_the_listener_distrusts_and_empties_the_cache() -> None:
    parts = started()
    parts.freshness.lost()
    assert parts.cache.trusted is False
    assert parts.clears == ["unreachable"]
    assert parts.freshness.position is None
    parts.freshness.lost()  # no position: nothing more to clear
    assert parts.clears == ["unreachable"]
    assert parts.cache.trusted is False
    parts.freshness.apply()
    assert parts.cache.trusted is True
    assert parts.clears == ["unreachable", "lost"]


def test_an_unreadable_feed_loses_the_position() -> None:
    parts = started()
    parts.store.broken = True
    parts.freshness.apply()
    assert (parts.freshness.position, parts.cache.trusted) == (None, False)
    assert parts.clears == ["unreachable"]


def test_a_read_that_began_after_a_moment_serves_it() -> None:
    parts = started()
    parts.seconds.now = 200.0
    parts.freshness.apply()  # a read began at 200
    reads = parts.store.reads
    parts.freshness.apply_since(199.5)  # arrived before that read began: served
    assert parts.store.reads == reads
    parts.freshness.apply_since(200.0)  # arrived as it began: may have missed it
    assert parts.store.reads == reads + 1
    parts.seconds.now = 201.0
    parts.freshness.apply_since(200.5)  # the read at 200 is older: read again
    assert parts.store.reads == reads + 2
    parts.freshness.apply_since(200.5)  # the read that began at 201 serves it
    assert parts.store.reads == reads + 2


def test_a_failed_read_serves_nobody() -> None:
    parts = started()
    parts.seconds.now = 300.0
    parts.store.broken = True
    parts.freshness.apply_since(299.0)
    parts.store.broken = False
    reads = parts.store.reads
    parts.freshness.apply_since(299.0)
    assert parts.store.reads > reads


def test_changes_are_applied_in_batches_and_their_digests_become_known(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(freshness_module, "BATCH", 2)
    parts = started()
    digests = [f"{n:064x}" for n in range(10, 15)]
    for number, digest in enumerate(digests, start=2):
        parts.change(number, digest)
    parts.freshness.apply()
    assert parts.freshness.position == 6
    assert parts.store.reads == 3  # 2 + 2 + 1 changes
    assert all(parts.freshness.known.might_contain(d) for d in digests)
    assert parts.clears == []  # none of those tokens had anything cached to drop


def test_a_full_filter_is_rebuilt_from_the_store() -> None:
    parts = started()
    with parts.store.unit(write=True) as unit:
        token = Token("t", "t", (), (), T0, Actor("cli", SYSTEM))
        unit.tokens.add(token, "a" * 64)
    known = parts.freshness.known
    for n in range(known.capacity + 1):
        known.add(f"{n:064x}")
    assert known.full
    parts.freshness.apply()
    assert not known.full
    assert known.count == 1
    assert known.might_contain("a" * 64)
    assert parts.clears == ["lost"]


def test_a_first_read_may_be_asked_for_before_any_other() -> None:
    parts = Parts()
    parts.change(1)
    parts.freshness.apply_since(50.0)
    assert parts.freshness.position == 1
    assert parts.store.reads == 1


def test_an_unreadable_feed_is_logged_only_when_a_position_was_known(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "apitokens.freshness")
    never_read = Parts()
    never_read.store.broken = True
    never_read.freshness.apply()
    assert caplog.records == []
    parts = started()
    parts.store.broken = True
    parts.freshness.apply()
    assert [(r.levelno, r.getMessage(), getattr(r, "error", None)) for r in caplog.records] == [
        (logging.WARNING, "change feed unreadable", "RuntimeError")
    ]


def test_a_feed_pruned_past_the_position_starts_over(caplog: pytest.LogCaptureFixture) -> None:
    parts = started()
    parts.change(2)
    parts.change(3)
    with parts.store.unit(write=True) as unit:
        unit.changes.prune(datetime(2031, 1, 1, tzinfo=UTC))  # all but the newest entry
    caplog.set_level(logging.INFO, "apitokens.freshness")
    parts.freshness.apply()
    assert [r.getMessage() for r in caplog.records] == [
        "change feed position lost; dropping every cached credential"
    ]
    assert parts.freshness.position == 3
    assert parts.clears == ["lost"]
    assert parts.cache.trusted is True
