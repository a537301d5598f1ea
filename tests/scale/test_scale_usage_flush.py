"""Reads through an instance never show ``lastUsedAt`` moving back while it flushes.

A read shows the stored value merged with the instance's uses not yet written. Were the
uses being written invisible, or looked at after the row was read, a flush committing
meanwhile would be in neither. In-process, with stores that make those moments happen.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apitokens.domain.clock import SystemClock
from apitokens.domain.permissions import PermissionCatalog
from apitokens.domain.tokens import SYSTEM, Actor, Principal
from apitokens.domain.validation import Lifetimes, build_spec
from apitokens.domain.values import ValueCodec
from apitokens.service.cache import CredentialCache
from apitokens.service.tokens import TokenService
from apitokens.service.usage import UsageRecorder
from apitokens.storage.migrate import upgrade
from apitokens.storage.sql.store import SqlStore
from support.databases import sqlite_url

HANG_GUARD_SECONDS = 30.0


class _HeldTokens:
    def __init__(self, writing: threading.Event, release: threading.Event) -> None:
        self.writing, self.release = writing, release
        self.fail = False

    def record_usage(self, usage: Mapping[str, tuple[datetime, tuple[str, ...]]]) -> None:
        self.writing.set()
        assert self.release.wait(HANG_GUARD_SECONDS)
        if self.fail:
            raise ConnectionError("the database went away")


class _HeldStore:
    """A store whose write unit blocks in ``record_usage`` until released."""

    def __init__(self) -> None:
        self.writing, self.release = threading.Event(), threading.Event()
        self.tokens = _HeldTokens(self.writing, self.release)

    @contextmanager
    def unit(self, *, write: bool = False) -> Iterator[Any]:
        yield self

    @property
    def audit(self) -> Any:
        return self


def _flush_in_background(recorder: UsageRecorder) -> tuple[threading.Thread, list[str]]:
    errors: list[str] = []

    def run() -> None:
        try:
            recorder.flush()
        except ConnectionError as error:
            errors.append(str(error))

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_usage_being_written_stays_visible() -> None:
    store = _HeldStore()
    recorder = UsageRecorder(store)  # type: ignore[arg-type]
    used_at = datetime(2030, 1, 1, tzinfo=UTC)
    recorder.note("t1", used_at, "10.0.0.1")
    thread, _ = _flush_in_background(recorder)
    try:
        assert store.writing.wait(HANG_GUARD_SECONDS)
        assert recorder.pending("t1") == (used_at, ("10.0.0.1",))
        recorder.note("t1", used_at + timedelta(seconds=1), "10.0.0.2")  # during the write
        assert recorder.pending("t1")[0] == used_at + timedelta(seconds=1)
    finally:
        store.release.set()
        thread.join(HANG_GUARD_SECONDS)
    assert recorder.pending("t1")[0] == used_at + timedelta(seconds=1)  # not yet written


def test_a_failed_write_keeps_the_usage_for_the_next_flush() -> None:
    store = _HeldStore()
    store.tokens.fail = True
    recorder = UsageRecorder(store)  # type: ignore[arg-type]
    used_at = datetime(2030, 1, 1, tzinfo=UTC)
    recorder.note("t1", used_at, "10.0.0.1")
    thread, errors = _flush_in_background(recorder)
    assert store.writing.wait(HANG_GUARD_SECONDS)
    store.release.set()
    thread.join(HANG_GUARD_SECONDS)
    assert errors == ["the database went away"]
    assert recorder.pending("t1") == (used_at, ("10.0.0.1",))


class _FlushAfterNextRead:
    """A real store that, once armed, runs a flush right after the next read unit ends:
    between the service reading a row and it looking at the pending uses."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.armed: Callable[[], object] | None = None

    @contextmanager
    def unit(self, *, write: bool = False) -> Iterator[Any]:
        with self.store.unit(write=write) as unit:
            yield unit
        if self.armed is not None and not write:
            flush, self.armed = self.armed, None
            flush()

    def ping(self) -> None:
        self.store.ping()

    def close(self) -> None:
        self.store.close()


def test_a_flush_committing_right_after_a_read_is_not_missed(tmp_path: Path) -> None:
    sql = SqlStore(sqlite_url(tmp_path / "usage.db"))
    upgrade(sql.engine)
    store = _FlushAfterNextRead(sql)
    usage = UsageRecorder(store)
    catalog = PermissionCatalog()
    service = TokenService(
        store,
        ValueCodec("apitk"),
        SystemClock(),
        Lifetimes(),
        CredentialCache(),
        usage,
    )
    try:
        spec = build_spec(catalog, "admin", catalog.names, [])
        caller = Principal(service.create(Actor("t", SYSTEM), spec).token, None)
        used = service.create(Actor("t", SYSTEM), build_spec(catalog, "used", [], [])).token
        first = datetime(2030, 1, 1, tzinfo=UTC)
        usage.note(used.id, first, None)
        usage.flush()
        usage.note(used.id, first + timedelta(seconds=1), None)
        assert service.get(caller, used.id).last_used_at == first + timedelta(seconds=1)
        store.armed = usage.flush
        assert service.get(caller, used.id).last_used_at == first + timedelta(seconds=1)
        usage.note(used.id, first + timedelta(seconds=2), None)
        store.armed = usage.flush
        listed = {token.id: token for token in service.list(caller, None, None).tokens}
        assert listed[used.id].last_used_at == first + timedelta(seconds=2)
    finally:
        store.close()
