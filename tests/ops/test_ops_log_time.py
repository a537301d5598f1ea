"""The ``at`` field of a log line: formatted once per second, the same text as before."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import example, given
from hypothesis import strategies as st

from apitokens.logs import rfc3339_millis


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False, allow_infinity=False))
@example(1764600000.9999995)  # rounds up into the next second
@example(1764600000.0004995)
@example(1764600000.4709999999)
@example(0.0)
def test_at_is_the_isoformat_of_the_time_in_utc_to_the_millisecond(created: float) -> None:
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    assert rfc3339_millis(created) == expected
    assert rfc3339_millis(created) == expected  # and from the per-second cache
