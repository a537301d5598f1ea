"""The work an instance does besides answering requests, with a start/stop life cycle.

``start`` prepares the database (migrations) and then runs the periodic jobs: following
the change feed (``Freshness``), writing coalesced usage, pruning the feed and ended
values. A database that does not answer at start is not fatal: the instance serves
``/healthz``, answers 503 elsewhere (``ready`` is False), and retries with backoff until
the database answers. ``stop`` ends the jobs and writes pending usage one last time.

The HTTP app's lifespan drives it; nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from apitokens.domain.clock import Clock
from apitokens.domain.errors import StorageUnavailable
from apitokens.service.freshness import Freshness
from apitokens.service.usage import UsageRecorder
from apitokens.storage.port import Store, Watch

log = logging.getLogger("apitokens")

Offload = Callable[[Callable[[], object]], Awaitable[object]]

FIRST_RETRY_SECONDS = 0.25
MAX_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class Job:
    name: str
    every: float
    run: Callable[[], object]


@dataclass(frozen=True)
class Schedule:
    poll_seconds: float
    flush_seconds: float
    prune_seconds: float
    feed_retention: timedelta


class Readiness:
    """False until the database is prepared; requests are refused with 503 meanwhile."""

    def __init__(self) -> None:
        self.ready = False

    def check(self) -> None:
        if not self.ready:
            raise StorageUnavailable()


class Background:
    def __init__(
        self,
        store: Store,
        freshness: Freshness,
        usage: UsageRecorder,
        clock: Clock,
        schedule: Schedule,
        readiness: Readiness,
        on_flush: Callable[[bool], None] | None = None,
    ) -> None:
        self._store = store
        self._freshness = freshness
        self._usage = usage
        self._clock = clock
        self._schedule = schedule
        self.readiness = readiness
        self._on_flush = on_flush
        self._tasks: list[asyncio.Task[None]] = []
        self._watch: Watch | None = None
        self._jobs = [
            Job("feed", schedule.poll_seconds, freshness.apply),
            Job("usage", schedule.flush_seconds, self.flush),
            Job("prune", schedule.prune_seconds, self.prune),
        ]

    def add_job(self, name: str, every: float, run: Callable[[], object]) -> None:
        """Run ``run`` every ``every`` seconds once the database is ready (before start)."""
        self._jobs.append(Job(name, every, run))

    async def start(self, offload: Offload) -> None:
        """Prepare the database (or keep trying in the background) and start the jobs."""
        try:
            await offload(self._open)
        except StorageUnavailable:
            log.warning("database unavailable at start; retrying", extra=self._where())
            self._tasks.append(asyncio.create_task(self._open_when_ready(offload)))
            return
        self._start_jobs(offload)

    async def stop(self, offload: Offload) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._watch is not None:
            await offload(self._watch.stop)
            self._watch = None
        if self.readiness.ready:
            await offload(self.flush)
        self._store.close()
        log.info("stopped")

    def flush(self) -> None:
        """Write pending usage; on failure keep it for the next attempt (never raises)."""
        try:
            written = self._usage.flush()
        except Exception as error:
            if self._on_flush is not None:
                self._on_flush(False)
            log.warning(
                "lastUsedAt flush failed; will retry", extra={"error": type(error).__name__}
            )
            return
        if written and self._on_flush is not None:
            self._on_flush(True)

    def prune(self) -> None:
        """Forget feed entries older than the retention, and values whose grace ended."""
        now = self._clock.now()
        try:
            with self._store.unit(write=True) as unit:
                unit.changes.prune(now - self._schedule.feed_retention)
                unit.tokens.prune_values(now)
        except Exception as error:
            log.warning("pruning failed; will retry", extra={"error": type(error).__name__})

    def prepare(self) -> None:
        """Migrate, read the change feed's head, and open for requests (blocking I/O)."""
        self._store.prepare()
        self._freshness.apply()
        self.readiness.ready = True
        log.info("ready", extra=self._where())

    def _open(self) -> None:
        self.prepare()
        self._watch = self._store.watch(self._freshness.notified, self._freshness.lost)

    async def _open_when_ready(self, offload: Offload) -> None:
        delay = FIRST_RETRY_SECONDS
        while True:
            await asyncio.sleep(delay)
            try:
                await offload(self._open)
            except Exception as error:  # unreachable, or refused: keep trying, say why
                log.info("database still unavailable", extra={"error": type(error).__name__})
                delay = min(delay * 2, MAX_RETRY_SECONDS)
                continue
            break
        self._start_jobs(offload)

    def _start_jobs(self, offload: Offload) -> None:
        self._tasks.extend(asyncio.create_task(self._every(job, offload)) for job in self._jobs)

    async def _every(self, job: Job, offload: Offload) -> None:
        while True:
            await asyncio.sleep(job.every)
            with contextlib.suppress(Exception):  # each job logs its own failures
                await offload(job.run)

    def _where(self) -> dict[str, str]:
        return {"database": self._store.description}
