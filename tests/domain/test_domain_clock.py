"""The system clock: UTC, whole milliseconds, the same moment ``to_millis`` would give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apitokens.domain import clock
from apitokens.domain.clock import SystemClock, to_millis

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "start_ms",
    [0, 1_733_100_000_000, 1_796_000_000_123, 4_102_444_799_000],  # 1970, now-ish, 2026, 2099
)
def test_now_is_the_moment_in_whole_milliseconds(
    monkeypatch: pytest.MonkeyPatch, start_ms: int
) -> None:
    for ms in range(start_ms, start_ms + 5_000):
        nanos = ms * 1_000_000 + 999_999  # any sub-millisecond part is cut, never rounded up
        monkeypatch.setattr(clock.time, "time_ns", lambda nanos=nanos: nanos)
        now = SystemClock().now()
        assert now == EPOCH + timedelta(milliseconds=ms)
        assert now.tzinfo is UTC and now.microsecond % 1000 == 0


def test_now_agrees_with_to_millis_of_the_system_time() -> None:
    before = to_millis(datetime.now(UTC))
    now = SystemClock().now()
    after = to_millis(datetime.now(UTC))
    assert before <= now <= after
