"""The usage recorder alone, on a real in-memory store: coalescing, what reads see during a
flush, what a failed flush keeps, and the order of the audit events it writes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from apitokens.domain.audit import AuditEvent
from apitokens.domain.tokens import SYSTEM, Actor, Token
from apitokens.service.usage import UsageRecorder
from apitokens.storage.memory import MemoryStore, MemoryUnit

T0 = datetime(2030, 1, 1, tzinfo=UTC)
ID = "00000000-0000-4000-8000-000000000001"


class HookedStore(MemoryStore):
    """A memory store that runs ``on_write`` inside every write unit (to look, or to fail)."""

    def __init__(self) -> None:
        super().__init__()
        self.on_write: Callable[[], None] | None = None
        self.writes = 0

    @contextlib.contextmanager
    def unit(self, *, write: bool = False) -> Iterator[MemoryUnit]:
        with super().unit(write=write) as unit:
            if write:
                self.writes += 1
                if self.on_write is not None:
                    self.on_write()
            yield unit


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def event(number: int) -> AuditEvent:
    return AuditEvent("auth.rotated_value_used", ID, None, None, at(number), {"n": number})


@pytest.fixture
def store() -> HookedStore:
    hooked = HookedStore()
    with hooked.unit(write=True) as unit:
        unit.tokens.add(Token(ID, "used", (), (), T0, Actor("cli", SYSTEM)), "0" * 64)
    hooked.writes = 0
    return hooked


def stored(store: MemoryStore) -> tuple[datetime | None, tuple[str, ...]]:
    with store.unit() as unit:
        token = unit.tokens.find(ID)
    assert token is not None
    return token.last_used_at, token.last_used_ips


def test_notes_coalesce_newest_address_first_and_time_never_moves_back() -> None:
    recorder = UsageRecorder(MemoryStore())
    assert recorder.pending(ID) == (None, ())
    recorder.note(ID, at(10), "192.0.2.1")
    recorder.note(ID, at(5), "192.0.2.2")  # noted later, but an earlier time
    recorder.note(ID, at(7), None)
    assert recorder.pending(ID) == (at(10), ("192.0.2.2", "192.0.2.1"))
    recorder.note(ID, at(11), "192.0.2.1")
    assert recorder.pending(ID) == (at(11), ("192.0.2.1", "192.0.2.2"))
    assert recorder.snapshot() == {ID: (at(11), ("192.0.2.1", "192.0.2.2"))}
    assert recorder.pending("other") == (None, ())


def test_a_use_without_an_address_has_no_address() -> None:
    recorder = UsageRecorder(MemoryStore())
    recorder.note(ID, at(1), None)
    recorder.note(ID, at(2), "")
    assert recorder.pending(ID) == (at(2), ())


def test_forget_drops_what_is_pending_for_one_token_only() -> None:
    recorder = UsageRecorder(MemoryStore())
    recorder.note(ID, at(1), "192.0.2.1")
    recorder.note("other", at(1), "192.0.2.1")
    recorder.forget(ID)
    recorder.forget("never noted")
    assert recorder.pending(ID) == (None, ())
    assert recorder.snapshot() == {"other": (at(1), ("192.0.2.1",))}


def test_flush_writes_usage_and_events_once(store: HookedStore) -> None:
    recorder = UsageRecorder(store)
    assert recorder.flush() == 0
    assert store.writes == 0  # nothing pending: no write at all
    recorder.note(ID, at(3), "192.0.2.1")
    recorder.event(event(1))
    recorder.event(event(2))
    assert recorder.flush() == 3
    assert stored(store) == (at(3), ("192.0.2.1",))
    with store.unit() as unit:
        assert [e.detail for e in unit.audit.page(10, None, None, None)] == [{"n": 2}, {"n": 1}]
    assert recorder.pending(ID) == (None, ())
    assert recorder.snapshot() == {}
    assert recorder.flush() == 0
    assert store.writes == 1


def test_an_event_alone_is_flushed(store: HookedStore) -> None:
    recorder = UsageRecorder(store)
    recorder.event(event(1))
    assert recorder.flush() == 1
    assert store.writes == 1


def test_a_flush_in_progress_is_still_visible(store: HookedStore) -> None:
    recorder = UsageRecorder(store)
    recorder.note(ID, at(3), "192.0.2.1")
    seen: list[object] = []

    def look() -> None:
        seen.append(recorder.pending(ID))
        seen.append(recorder.snapshot())
        recorder.note(ID, at(4), "192.0.2.2")  # a use while the flush writes
        seen.append(recorder.pending(ID))
        seen.append(recorder.snapshot())
        recorder.note("other", at(1), None)
        seen.append(recorder.snapshot())

    store.on_write = look
    assert recorder.flush() == 1
    assert seen == [
        (at(3), ("192.0.2.1",)),
        {ID: (at(3), ("192.0.2.1",))},
        (at(4), ("192.0.2.2",)),
        {ID: (at(4), ("192.0.2.2",))},
        {ID: (at(4), ("192.0.2.2",)), "other": (at(1), ())},
    ]
    assert recorder.pending(ID) == (at(4), ("192.0.2.2",))  # the use during the flush


def test_a_pending_use_older_than_the_one_being_written_does_not_hide_it(
    store: HookedStore,
) -> None:
    recorder = UsageRecorder(store)
    recorder.note(ID, at(9), "192.0.2.1")
    seen: list[object] = []

    def look() -> None:
        recorder.note(ID, at(2), "192.0.2.2")  # an older use, noted late
        seen.append(recorder.pending(ID))
        seen.append(recorder.snapshot())

    store.on_write = look
    recorder.flush()
    assert seen == [(at(9), ("192.0.2.1",)), {ID: (at(9), ("192.0.2.1",))}]


def test_a_failed_flush_keeps_everything_for_the_next(store: HookedStore) -> None:
    recorder = UsageRecorder(store)
    recorder.note(ID, at(3), "192.0.2.1")
    recorder.event(event(1))

    def fail() -> None:
        recorder.note(ID, at(5), "192.0.2.2")  # newer use noted during the failed write
        recorder.event(event(2))
        raise RuntimeError("database gone")

    store.on_write = fail
    with pytest.raises(RuntimeError, match="database gone"):
        recorder.flush()
    assert stored(store) == (None, ())
    assert recorder.pending(ID) == (at(5), ("192.0.2.2", "192.0.2.1"))
    assert recorder.snapshot() == {ID: (at(5), ("192.0.2.2", "192.0.2.1"))}
    store.on_write = None
    assert recorder.flush() == 3
    assert stored(store) == (at(5), ("192.0.2.2", "192.0.2.1"))
    with store.unit() as unit:
        # oldest first in the log: the event kept from the failed flush, then the newer one
        assert [e.detail for e in unit.audit.page(10, None, None, None)] == [{"n": 2}, {"n": 1}]


def test_a_failed_flush_keeps_the_later_time_of_an_older_note(store: HookedStore) -> None:
    recorder = UsageRecorder(store)
    recorder.note(ID, at(8), "192.0.2.1")

    def fail() -> None:
        recorder.note(ID, at(6), "192.0.2.2")
        raise RuntimeError("database gone")

    store.on_write = fail
    with pytest.raises(RuntimeError):
        recorder.flush()
    assert recorder.pending(ID) == (at(8), ("192.0.2.2", "192.0.2.1"))


def test_a_failed_flush_of_a_token_with_nothing_newer(store: HookedStore) -> None:
    recorder = UsageRecorder(store)
    recorder.note(ID, at(8), "192.0.2.1")

    def fail() -> None:
        raise RuntimeError("database gone")

    store.on_write = fail
    with pytest.raises(RuntimeError):
        recorder.flush()
    assert recorder.pending(ID) == (at(8), ("192.0.2.1",))
    assert recorder.snapshot() == {ID: (at(8), ("192.0.2.1",))}


def test_a_use_noted_during_a_flush_at_the_same_instant_wins(store: HookedStore) -> None:
    recorder = UsageRecorder(store)
    recorder.note(ID, at(3), "192.0.2.9")
    seen: list[object] = []

    def look() -> None:
        recorder.note(ID, at(3), "192.0.2.1")  # same instant, another address
        seen.append(recorder.pending(ID))
        seen.append(recorder.snapshot())

    store.on_write = look
    recorder.flush()
    assert seen == [(at(3), ("192.0.2.1",)), {ID: (at(3), ("192.0.2.1",))}]


def test_forget_drops_only_that_tokens_daily_counts() -> None:
    recorder = UsageRecorder(MemoryStore())
    other = "00000000-0000-4000-8000-000000000002"
    recorder.note(ID, at(0), None)
    recorder.note(ID, at(86400), None)
    recorder.note(other, at(0), None)
    recorder.forget(ID)
    assert recorder.day_counts(ID) == {}
    assert recorder.day_counts(other) == {T0.date(): 1}


def test_a_failed_flush_keeps_the_daily_counts_with_the_new_ones(store: HookedStore) -> None:
    recorder = UsageRecorder(store)
    day, later = T0.date(), (T0 + timedelta(days=2)).date()
    recorder.note(ID, at(0), None)
    recorder.note(ID, at(1), None)
    recorder.note(ID, at(2 * 86400), None)

    def fail() -> None:
        recorder.note(ID, at(2), None)  # a use while the flush is being written
        raise RuntimeError("the database is gone")

    store.on_write = fail
    with pytest.raises(RuntimeError):
        recorder.flush()
    assert recorder.day_counts(ID) == {day: 3, later: 1}
    store.on_write = None
    recorder.flush()
    assert recorder.day_counts(ID) == {}
    with store.unit() as unit:
        assert unit.usage_days.between(ID, day, later) == {day: 3, later: 1}
