"""The background life cycle, on a scripted in-memory store and a recorded ``asyncio.sleep``
(no real waiting): start, retry with backoff while the database is down, the periodic
jobs, flush and prune failures, stop. Pruning itself runs on every store backend."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from service_harness import Harness, SteppingClock

from apitokens.domain.errors import StorageUnavailable
from apitokens.domain.tokens import Principal
from apitokens.service import background as background_module
from apitokens.service.background import Background, Readiness, Schedule
from apitokens.service.cache import CredentialCache
from apitokens.service.freshness import Freshness
from apitokens.service.known import KnownDigests
from apitokens.service.usage import UsageRecorder
from apitokens.storage.memory import MemoryStore, MemoryUnit

REAL_SLEEP = asyncio.sleep
SCHEDULE = Schedule(
    poll_seconds=1.5, flush_seconds=2.5, prune_seconds=3.5, feed_retention=timedelta(hours=1)
)


class ScriptedStore(MemoryStore):
    """A memory store that can be down at start, fail writes, and records its watchers."""

    def __init__(self, down_for: int = 0) -> None:
        super().__init__()
        self.down_for = down_for
        self.prepared = 0
        self.fail_writes = False
        self.watchers: list[tuple[object, object]] = []
        self.stopped_watches = 0
        self.closed = False
        self.writes = 0

    def prepare(self) -> None:
        if self.down_for:
            self.down_for -= 1
            raise StorageUnavailable()
        self.prepared += 1

    def watch(
        self, on_change: Callable[[int | None], None], on_lost: Callable[[], None]
    ) -> ScriptedWatch:
        self.watchers.append((on_change, on_lost))
        return ScriptedWatch(self)

    def close(self) -> None:
        self.closed = True

    @contextlib.contextmanager
    def unit(self, *, write: bool = False) -> Iterator[MemoryUnit]:
        if write and self.fail_writes:
            raise RuntimeError("disk full")
        self.writes += write
        with super().unit(write=write) as unit:
            yield unit


class ScriptedWatch:
    def __init__(self, store: ScriptedStore) -> None:
        self.store = store

    def stop(self) -> None:
        self.store.stopped_watches += 1


class Parts:
    def __init__(self, store: ScriptedStore, with_listener: bool = True) -> None:
        self.store = store
        self.cache = CredentialCache()
        self.freshness = Freshness(store, self.cache, KnownDigests())
        self.usage = UsageRecorder(store)
        self.flushes: list[bool] = []
        self.readiness = Readiness()
        self.background = Background(
            store,
            self.freshness,
            self.usage,
            SteppingClock(),
            SCHEDULE,
            self.readiness,
            self.flushes.append if with_listener else None,
        )


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every ``asyncio.sleep`` of the background module is recorded and returns at once."""
    recorded: list[float] = []

    async def sleep(delay: float) -> None:
        recorded.append(delay)
        await REAL_SLEEP(0)

    monkeypatch.setattr(background_module.asyncio, "sleep", sleep)
    return recorded


async def offload(run: Callable[[], object]) -> object:
    return run()


async def settle(rounds: int = 40) -> None:
    for _ in range(rounds):
        await REAL_SLEEP(0)


def messages(caplog: pytest.LogCaptureFixture) -> list[tuple[str, dict[str, object]]]:
    keys = ("database", "error")
    return [
        (record.getMessage(), {k: getattr(record, k) for k in keys if hasattr(record, k)})
        for record in caplog.records
        if record.name == "apitokens"
    ]


async def test_a_start_on_a_ready_database_runs_every_job_until_stopped(
    sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "apitokens")
    parts = Parts(ScriptedStore())
    runs: list[str] = []
    parts.background.add_job("extra", 4.5, lambda: runs.append("extra"))
    await parts.background.start(offload)
    assert parts.readiness.ready is True
    with parts.store.unit(write=True) as unit:
        unit.changes.record("some-token", SteppingClock().now())  # a change to follow
    parts.usage.note("some-token", SteppingClock().now(), None)  # a use to write
    assert parts.store.watchers == [(parts.freshness.notified, parts.freshness.lost)]
    await settle()
    assert set(sleeps) == {1.5, 2.5, 3.5, 4.5}
    assert len(runs) >= 3  # a job runs again and again
    assert parts.freshness.position == 1  # the feed job followed the change
    assert parts.flushes[:1] == [True]  # the usage job wrote the use
    tasks = list(parts.background._tasks)
    await parts.background.stop(offload)
    assert all(task.done() for task in tasks)  # stop waits for its jobs to end
    assert parts.store.stopped_watches == 1
    assert parts.store.closed is True
    await parts.background.stop(offload)  # a second stop is harmless
    assert parts.store.stopped_watches == 1
    count = len(sleeps)
    await settle()
    assert len(sleeps) == count  # stopped: no job runs any more
    where = {"database": parts.store.description}
    assert messages(caplog)[0] == ("ready", where)
    assert messages(caplog)[-1] == ("stopped", {})


async def test_a_failing_job_keeps_its_schedule(sleeps: list[float]) -> None:
    parts = Parts(ScriptedStore())
    runs: list[int] = []

    def flaky() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("first run fails")

    parts.background.add_job("flaky", 9, flaky)
    await parts.background.start(offload)
    await settle()
    await parts.background.stop(offload)
    assert len(runs) >= 2


async def test_stop_writes_pending_usage_once_more(sleeps: list[float]) -> None:
    parts = Parts(ScriptedStore())
    parts.usage.note("some-token", SteppingClock().now(), None)
    await parts.background.start(offload)
    await parts.background.stop(offload)  # stopped before any job ran
    assert sleeps == []
    assert parts.flushes == [True]
    assert parts.usage.snapshot() == {}


async def test_stop_before_the_database_was_ready_writes_nothing(sleeps: list[float]) -> None:
    parts = Parts(ScriptedStore(down_for=1000))
    parts.usage.note("some-token", SteppingClock().now(), None)
    await parts.background.start(offload)
    await settle(5)
    await parts.background.stop(offload)
    assert parts.flushes == []
    assert parts.store.closed is True
    assert parts.store.watchers == []
    assert parts.usage.snapshot() != {}


async def test_a_database_down_at_start_is_retried_with_doubling_delays(
    sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "apitokens")
    parts = Parts(ScriptedStore(down_for=8))  # the start, then seven retries
    runs: list[str] = []
    parts.background.add_job("extra", 1.5, lambda: runs.append("extra"))
    await parts.background.start(offload)
    assert parts.readiness.ready is False
    await settle(100)
    assert sleeps[:8] == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert parts.readiness.ready is True
    assert parts.store.prepared == 1
    assert parts.store.watchers == [(parts.freshness.notified, parts.freshness.lost)]
    assert set(sleeps[8:]) == {1.5, 2.5, 3.5}  # then the jobs run
    assert runs  # ... and do their work
    await parts.background.stop(offload)
    where = {"database": parts.store.description}
    logged = messages(caplog)
    assert logged[0] == ("database unavailable at start; retrying", where)
    assert logged[1:8] == [("database still unavailable", {"error": "StorageUnavailable"})] * 7
    assert logged[8] == ("ready", where)


async def test_a_retry_that_succeeds_at_once_starts_the_jobs(sleeps: list[float]) -> None:
    parts = Parts(ScriptedStore(down_for=1))
    await parts.background.start(offload)
    await settle()
    assert sleeps[0] == 0.25
    assert set(sleeps[1:]) == {1.5, 2.5, 3.5}
    await parts.background.stop(offload)


def test_a_flush_says_whether_it_wrote(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "apitokens")
    parts = Parts(ScriptedStore())
    parts.background.flush()
    assert parts.flushes == []  # nothing to write: nothing to say
    parts.usage.note("some-token", SteppingClock().now(), None)
    parts.background.flush()
    assert parts.flushes == [True]
    parts.usage.note("some-token", SteppingClock().now(), None)
    parts.store.fail_writes = True
    parts.background.flush()  # never raises
    assert parts.flushes == [True, False]
    assert messages(caplog) == [("lastUsedAt flush failed; will retry", {"error": "RuntimeError"})]
    assert parts.usage.snapshot() != {}  # kept for the next attempt


def test_a_flush_without_a_listener() -> None:
    parts = Parts(ScriptedStore(), with_listener=False)
    parts.usage.note("some-token", SteppingClock().now(), None)
    parts.store.fail_writes = True
    parts.background.flush()
    parts.store.fail_writes = False
    parts.background.flush()
    assert parts.usage.snapshot() == {}


def test_a_failed_prune_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "apitokens")
    parts = Parts(ScriptedStore())
    parts.store.fail_writes = True
    parts.background.prune()
    assert messages(caplog) == [("pruning failed; will retry", {"error": "RuntimeError"})]


def test_prune_forgets_old_feed_entries_and_ended_values(
    harness: Harness, admin: Principal
) -> None:
    issued = harness.create(admin, "pruned")
    harness.tokens.rotate(admin, issued.token.id, 10)
    old_digest = issued.value and harness.services.codec.parse(issued.value)
    assert old_digest is not None
    harness.clock.advance(9)
    harness.services.background.prune()
    with harness.store.unit() as unit:
        assert unit.tokens.find_by_digest(old_digest) is not None  # still in its grace
        assert unit.changes.since(0, 100)  # the whole feed is still there
    harness.clock.advance(3600)
    harness.create(admin, "later")  # one recent change
    harness.services.background.prune()
    with harness.store.unit() as unit:
        assert unit.tokens.find_by_digest(old_digest) is None
        assert unit.changes.since(0, 100) is None  # older entries were pruned


async def test_the_prune_job_runs(sleeps: list[float]) -> None:
    parts = Parts(ScriptedStore())
    await parts.background.start(offload)
    await settle()
    await parts.background.stop(offload)
    assert parts.flushes == []  # nothing to flush: every write was a prune
    assert parts.store.writes >= 2
