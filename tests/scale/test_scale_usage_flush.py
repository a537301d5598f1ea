"""While an instance writes its batched usage, reads through it still see that usage.

Otherwise a read between taking the batch and committing it would show ``lastUsedAt``
older than a read a moment before. In-process, with a store that holds the write open.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from apitokens.service.usage import UsageRecorder

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
