"""Time, injected: the service asks a clock instead of calling ``datetime.now`` itself."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


def to_millis(moment: datetime) -> datetime:
    """The contract's precision: UTC, milliseconds."""
    if moment.tzinfo is not UTC:  # now(UTC) already is: no conversion on the hot path
        moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware, in UTC, at millisecond precision."""
        ...


class SystemClock:
    def now(self) -> datetime:
        # to_millis(datetime.now(UTC)) at two thirds of the cost (it is asked on every
        # authentication): a whole number of milliseconds over 1000 is a float that
        # fromtimestamp rounds back to exactly that many milliseconds
        # (tests/domain/test_domain_clock.py checks a range of them).
        return datetime.fromtimestamp(time.time_ns() // 1_000_000 / 1000, UTC)
