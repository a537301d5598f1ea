"""The failure limiter alone, on a stepped clock: its threshold, its sliding window,
``Retry-After``, the key of a request without an address, and how it makes room."""

from __future__ import annotations

import pytest

from apitokens.domain.errors import TooManyFailures
from apitokens.service.limiter import FailureLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def at(self, offset: float) -> Clock:
        self.now = 1000.0 + offset
        return self


def limiter(clock: Clock, limit: int = 3, window: float = 60.0, **kwargs: int) -> FailureLimiter:
    return FailureLimiter(limit, window, clock=clock, **kwargs)


def retry_after(subject: FailureLimiter, address: str | None) -> int:
    with pytest.raises(TooManyFailures) as caught:
        subject.check(address)
    return caught.value.retry_after


def test_an_empty_limiter_lets_everyone_through() -> None:
    subject = limiter(Clock())
    subject.check("192.0.2.1")
    subject.check(None)
    assert len(subject) == 0


def test_the_limit_is_reached_by_exactly_limit_failures() -> None:
    clock = Clock()
    subject = limiter(clock)
    assert subject.fail("192.0.2.1") is False
    subject.check("192.0.2.1")
    assert subject.fail("192.0.2.1") is False
    subject.check("192.0.2.1")  # two of three: still allowed
    assert subject.fail("192.0.2.1") is True  # the third reaches the limit
    assert retry_after(subject, "192.0.2.1") == 60
    assert subject.fail("192.0.2.1") is False  # only reaching it is reported
    assert len(subject) == 1


def test_other_addresses_are_not_affected() -> None:
    clock = Clock()
    subject = limiter(clock)
    for _ in range(3):
        subject.fail("192.0.2.1")
    subject.check("192.0.2.2")
    subject.check(None)
    subject.fail("192.0.2.2")
    subject.check("192.0.2.2")
    assert len(subject) == 2


def test_retry_after_counts_from_the_oldest_failure_in_the_window() -> None:
    clock = Clock()
    subject = limiter(clock)
    for offset in (0, 10, 20):
        clock.at(offset)
        subject.fail("192.0.2.1")
    assert retry_after(subject, "192.0.2.1") == 40
    clock.at(25.5)
    assert retry_after(subject, "192.0.2.1") == 35  # 34.5 s left, rounded up
    clock.at(59.5)
    assert retry_after(subject, "192.0.2.1") == 1  # never less than one second
    clock.at(59.999)
    assert retry_after(subject, "192.0.2.1") == 1


def test_a_failure_leaves_the_window_exactly_window_seconds_later() -> None:
    clock = Clock()
    subject = limiter(clock)
    for offset in (0, 10, 20):
        clock.at(offset)
        subject.fail("192.0.2.1")
    clock.at(59.999)
    assert retry_after(subject, "192.0.2.1") == 1
    clock.at(60)
    subject.check("192.0.2.1")  # the failure at 0 has left: two remain
    assert subject.fail("192.0.2.1") is True  # ... and one more reaches the limit again
    assert retry_after(subject, "192.0.2.1") == 10  # now the oldest is the one at 10


def test_old_failures_do_not_count_towards_the_limit() -> None:
    clock = Clock()
    subject = limiter(clock)
    clock.at(0)
    subject.fail("192.0.2.1")
    clock.at(30)
    subject.fail("192.0.2.1")
    clock.at(60)
    assert subject.fail("192.0.2.1") is False  # the one at 0 expired: two in the window
    subject.check("192.0.2.1")
    clock.at(61)
    assert subject.fail("192.0.2.1") is True
    assert retry_after(subject, "192.0.2.1") == 29


def test_a_request_without_an_address_is_counted_under_one_key() -> None:
    clock = Clock()
    subject = limiter(clock, limit=2)
    subject.fail(None)
    assert subject.fail("") is True  # None and "" are the same, unknown, client
    assert retry_after(subject, None) == 60
    assert retry_after(subject, "") == 60
    subject.check("192.0.2.1")
    assert len(subject) == 1


def test_a_limit_of_one_blocks_after_the_first_failure() -> None:
    clock = Clock()
    subject = limiter(clock, limit=1, window=5)
    assert subject.fail("192.0.2.1") is True
    assert retry_after(subject, "192.0.2.1") == 5
    clock.at(5)
    subject.check("192.0.2.1")


def test_a_full_limiter_drops_expired_keys_first() -> None:
    clock = Clock()
    subject = limiter(clock, limit=3, max_tracked=4)
    clock.at(0)
    subject.fail("192.0.2.1")  # the most failures, but they expire at 60
    subject.fail("192.0.2.1")
    clock.at(30)
    for address in ("192.0.2.2", "192.0.2.3", "192.0.2.4"):
        subject.fail(address)
    clock.at(70)
    subject.fail("192.0.2.5")  # full: the expired key makes room, nobody else goes
    assert len(subject) == 4
    for address in ("192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"):
        assert [subject.fail(address) for _ in range(2)] == [False, True], address


def test_a_full_limiter_makes_room_only_for_a_new_key() -> None:
    clock = Clock()
    subject = limiter(clock, limit=3, max_tracked=2)
    subject.fail("192.0.2.1")
    subject.fail("192.0.2.2")
    assert [subject.fail("192.0.2.1") for _ in range(2)] == [False, True]
    assert [subject.fail("192.0.2.2") for _ in range(2)] == [False, True]
    assert len(subject) == 2


def test_a_full_limiter_evicts_the_quarter_with_the_fewest_failures() -> None:
    clock = Clock()
    subject = limiter(clock, limit=10, max_tracked=8)
    counts = {f"192.0.2.{n}": n for n in range(1, 9)}  # .1 has one failure ... .8 has eight
    for address, count in counts.items():
        for _ in range(count):
            subject.fail(address)
    assert len(subject) == 8
    subject.fail("198.51.100.1")  # full and nothing expired: .1 and .2 (a quarter) go
    assert len(subject) == 7
    for address in ("192.0.2.3", "192.0.2.8", "198.51.100.1"):
        subject.fail(address)  # known keys need no room
    assert len(subject) == 7
    # A key that kept its count reaches the limit after the same number of failures as
    # before the eviction; an evicted key starts again from nothing.
    assert [subject.fail("192.0.2.7") for _ in range(3)] == [False, False, True]
    assert [subject.fail("192.0.2.2") for _ in range(10)] == [False] * 9 + [True]


def test_a_small_full_limiter_evicts_at_least_one_key() -> None:
    clock = Clock()
    subject = limiter(clock, limit=5, max_tracked=2)
    subject.fail("192.0.2.1")
    subject.fail("192.0.2.2")
    subject.fail("192.0.2.2")
    subject.fail("192.0.2.3")
    assert len(subject) == 2
    assert [subject.fail("192.0.2.2") for _ in range(3)] == [False, False, True]
