"""Authentication decisions one by one, on the services: what each refusal counts, logs
and records (the failure limit, the metric outcome, the audit trail), and what is cached."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from service_harness import Harness, build_harness

from apitokens.domain import audit
from apitokens.domain.errors import (
    InvalidCredentials,
    PermissionDenied,
    TokenExpired,
    TooManyFailures,
)
from apitokens.domain.tokens import Principal
from apitokens.domain.validation import build_spec
from apitokens.domain.values import ValueCodec
from apitokens.service.auth import Authenticator
from apitokens.service.limiter import FailureLimiter
from apitokens.settings import Settings
from apitokens.storage.memory import MemoryStore, MemoryUnit
from apitokens.wiring import MEMORY_URL, build, refusal_pause
from support.inprocess import REFUSAL_DELAY as DELAY
from support.inprocess import create_admin, isolated_settings

IP = "192.0.2.10"


class Outcomes:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.lookups = 0
        self.unknown_lookups = 0

    def authentication(self, outcome: str, reason: str) -> None:
        self.seen.append((outcome, reason))

    def credential_lookup(self, found: bool) -> None:
        self.lookups += 1
        self.unknown_lookups += not found


class Seconds:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def inline(work: Callable[[], Any]) -> Any:
    return work()


class Subject:
    """An Authenticator on the harness's services, with its own limiter and outcomes."""

    def __init__(self, harness: Harness, limit: int = 3) -> None:
        self.harness = harness
        self.seconds = Seconds()
        self.limiter = FailureLimiter(limit, 60.0, clock=self.seconds)
        self.outcomes = Outcomes()
        self.pauses = 0
        s = harness.services
        self.auth = Authenticator(
            s.store,
            s.codec,
            s.cache,
            s.usage,
            self.limiter,
            s.clock,
            s.background.readiness,
            s.freshness,
            outcomes=self.outcomes,
            offload=inline,
            pause=self.pause,
        )

    async def pause(self) -> None:
        self.pauses += 1

    def login(self, value: str | None, ip: str | None = IP) -> Principal:
        address = ipaddress.ip_address(ip) if ip else None
        return asyncio.run(self.auth.authenticate(value, address))

    def cached(self, value: str | None, address: Any) -> Principal | None:
        return self.auth.cached(value, address)

    def refused(self, value: str | None, ip: str | None = IP) -> InvalidCredentials:
        with pytest.raises(InvalidCredentials) as caught:
            self.login(value, ip)
        return caught.value

    def events(self) -> list[audit.AuditEvent]:
        self.harness.usage.flush()
        with self.harness.store.unit() as unit:
            events = unit.audit.page(100, None, None, None)
        return [e for e in reversed(events) if e.action not in (audit.CREATE, audit.ROTATE)]


def refusals(caplog: pytest.LogCaptureFixture) -> list[tuple[str, dict[str, object]]]:
    keys = ("reason", "client_ip", "token_id")
    return [
        (r.getMessage(), {k: getattr(r, k) for k in keys if hasattr(r, k)})
        for r in caplog.records
        if r.name == "apitokens.auth"
    ]


def test_a_good_value_is_admitted_counted_and_noted(harness: Harness, admin: Principal) -> None:
    subject = Subject(harness)
    issued = harness.create(admin, "good")
    principal = subject.login(issued.value)
    assert principal == Principal(issued.token, ipaddress.ip_address(IP), False)
    assert subject.outcomes.seen == [("ok", "ok")]
    assert harness.usage.pending(issued.token.id) == (harness.clock.now(), (IP,))
    assert harness.services.cache.get(harness.services.codec.parse(issued.value) or "") is not None


def test_each_refusal_of_the_value_is_logged_counted_and_limited(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "apitokens.auth")
    subject = Subject(harness, limit=3)
    missing = subject.refused(None)
    assert (missing.reason, missing.message) == ("missing", "invalid or missing API key")
    assert subject.refused("").reason == "missing"
    assert len(subject.limiter) == 0  # no key: not a failed login
    assert subject.refused("apitk_junk").reason == "malformed"
    assert subject.refused(harness.services.codec.issue().value).reason == "unknown"
    assert subject.outcomes.seen == [
        ("invalid", "missing"),
        ("invalid", "missing"),
        ("invalid", "malformed"),
        ("invalid", "unknown"),
    ]
    assert refusals(caplog) == [
        ("authentication refused", {"reason": reason, "client_ip": IP})
        for reason in ("missing", "missing", "malformed", "unknown")
    ]
    assert subject.events() == []
    # The third counted failure reaches the limit: one burst event, then 429s.
    subject.refused("apitk_junk")
    [burst] = subject.events()
    assert (burst.action, burst.token_id, burst.actor, burst.client_ip, burst.at) == (
        audit.AUTH_FAILURE_BURST,
        None,
        None,
        IP,
        harness.clock.now(),
    )
    assert burst.detail == {"failures": 3, "windowSeconds": 60.0}
    with pytest.raises(TooManyFailures):
        subject.login("apitk_junk")
    assert subject.outcomes.seen[-1] == ("rate_limited", "rate_limited")
    subject.login(harness.bootstrap("elsewhere").value, "192.0.2.11")  # other addresses work


def test_an_unknown_value_is_refused_when_the_cache_is_not_trusted(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    subject = Subject(harness, limit=2)
    harness.services.cache.trusted = False  # the filter is not consulted: a lookup decides
    caplog.set_level(logging.INFO, "apitokens.auth")
    assert subject.refused(harness.services.codec.issue().value).reason == "unknown"
    assert subject.outcomes.seen == [("invalid", "unknown")]
    assert refusals(caplog) == [("authentication refused", {"reason": "unknown", "client_ip": IP})]
    assert subject.limiter.fail(IP) is True  # the failure was counted for IP


def test_a_request_without_an_address_is_logged_without_one(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    subject = Subject(harness, limit=2)
    caplog.set_level(logging.INFO, "apitokens.auth")
    subject.refused("apitk_junk", None)
    assert refusals(caplog) == [
        ("authentication refused", {"reason": "malformed", "client_ip": None})
    ]
    assert subject.limiter.fail("") is True  # counted under the one "no address" key


def test_a_value_rotated_out_is_counted_as_unknown_and_recorded(
    harness: Harness, admin: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    subject = Subject(harness)
    issued = harness.create(admin, "rotated")
    harness.tokens.rotate(admin, issued.token.id, 30)
    harness.clock.advance(29)
    in_grace = subject.login(issued.value)
    assert in_grace.rotated_out is True
    assert harness.services.cache.get(harness.services.codec.parse(issued.value) or "") is None
    harness.clock.advance(1)  # the grace period ends exactly now
    caplog.set_level(logging.INFO, "apitokens.auth")
    assert subject.refused(issued.value).reason == "rotated out"
    assert subject.outcomes.seen == [("ok", "ok"), ("invalid", "unknown")]
    assert refusals(caplog) == [
        ("authentication refused", {"reason": "rotated out", "client_ip": IP})
    ]
    events = subject.events()
    assert [(e.action, e.token_id, e.actor, e.client_ip, e.detail) for e in events] == [
        (audit.ROTATED_VALUE_USED, issued.token.id, None, IP, {"inGracePeriod": True}),
        (audit.ROTATED_VALUE_USED, issued.token.id, None, IP, {"inGracePeriod": False}),
    ]
    assert len(subject.limiter) == 1


def test_an_expired_value_says_so_and_counts_as_a_failure(
    harness: Harness, admin: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    subject = Subject(harness)
    later = harness.clock.now() + timedelta(minutes=1)
    spec = build_spec(harness.catalog, "brief", (), [], later, expires_at_given=True)
    issued = harness.tokens.create(admin.actor, spec, admin)
    harness.clock.advance(59.999)
    subject.login(issued.value)  # not expired yet
    caplog.set_level(logging.INFO, "apitokens.auth")
    harness.clock.advance(0.001)  # expires exactly now
    with pytest.raises(TokenExpired) as caught:
        subject.login(issued.value)
    assert caught.value.message == "the API key has expired"
    assert subject.outcomes.seen == [("ok", "ok"), ("expired", "expired")]
    assert refusals(caplog) == [
        ("authentication refused", {"reason": "expired", "token_id": issued.token.id})
    ]
    assert len(subject.limiter) == 1
    assert [subject.limiter.fail(IP) for _ in range(2)] == [False, True]  # counted for IP


def test_a_disallowed_address_is_refused_recorded_and_not_counted(
    harness: Harness, admin: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    subject = Subject(harness)
    fenced = harness.create(admin, "fenced", (), ["10.0.0.0/8"])
    caplog.set_level(logging.INFO, "apitokens.auth")
    with pytest.raises(PermissionDenied) as caught:
        subject.login(fenced.value, IP)
    assert caught.value.message == (
        "this API key may not be used from this address (see its allowedCIDRBlocks)"
    )
    assert subject.outcomes.seen == [("forbidden_address", "forbidden_address")]
    assert refusals(caplog) == [("address refused", {"token_id": fenced.token.id, "client_ip": IP})]
    [event] = subject.events()
    assert (event.action, event.token_id, event.actor, event.client_ip, event.at) == (
        audit.ADDRESS_REFUSED,
        fenced.token.id,
        None,
        IP,
        harness.clock.now(),
    )
    assert len(subject.limiter) == 0
    assert harness.usage.pending(fenced.token.id) == (None, ())
    assert subject.login(fenced.value, "10.1.2.3").token.id == fenced.token.id


class DroppingStore(MemoryStore):
    """A memory store on which a token change lands while a credential is being read."""

    def __init__(self) -> None:
        super().__init__()
        self.during_read: Callable[[], None] | None = None

    @contextlib.contextmanager
    def unit(self, *, write: bool = False) -> Iterator[MemoryUnit]:
        with super().unit(write=write) as unit:
            if not write and self.during_read is not None:
                hook, self.during_read = self.during_read, None
                hook()
            yield unit


def test_a_credential_read_before_a_drop_is_not_cached() -> None:
    store = DroppingStore()
    harness = build_harness(store)
    admin = harness.login(harness.bootstrap().value)
    issued = harness.create(admin, "raced")
    subject = Subject(harness)
    cache = harness.services.cache
    store.during_read = lambda: cache.drop((issued.token.id,))
    subject.login(issued.value)
    digest = harness.services.codec.parse(issued.value) or ""
    assert cache.get(digest) is None  # the read may be stale: not cached
    subject.login(issued.value)
    assert cache.get(digest) is not None  # a read after the drop is


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    @contextlib.contextmanager
    def unit(self, *, write: bool = False) -> Iterator[MemoryUnit]:
        if not write:
            self.reads += 1
        with super().unit(write=write) as unit:
            yield unit


def test_a_cached_credential_needs_no_database_read() -> None:
    store = CountingStore()
    harness = build_harness(store)
    admin = harness.login(harness.bootstrap().value)
    issued = harness.create(admin, "hot")
    subject = Subject(harness)
    subject.login(issued.value)
    reads = store.reads
    for _ in range(3):
        assert subject.login(issued.value).token.id == issued.token.id
    assert store.reads == reads


def test_each_database_lookup_is_counted_with_what_it_found(
    harness: Harness, admin: Principal
) -> None:
    subject = Subject(harness)
    issued = harness.create(admin, "looked-up")
    subject.login(issued.value)  # not cached yet: one lookup, found
    subject.login(issued.value)  # cached: none
    assert (subject.outcomes.lookups, subject.outcomes.unknown_lookups) == (1, 0)
    subject.refused(harness.services.codec.issue().value)  # the filter refuses it: none
    assert (subject.outcomes.lookups, subject.outcomes.unknown_lookups) == (1, 0)
    harness.services.tokens.delete(admin, issued.token.id)
    # Its digest stays in the filter until the filter is rebuilt: a lookup finds nothing.
    assert subject.refused(issued.value).reason == "unknown"
    assert (subject.outcomes.lookups, subject.outcomes.unknown_lookups) == (2, 1)


def test_unknown_values_arriving_together_share_one_feed_read(
    harness: Harness, admin: Principal
) -> None:
    import functools

    reads: list[str] = []

    async def counting(work: Callable[[], Any]) -> Any:
        if (
            isinstance(work, functools.partial)
            and work.func == harness.services.freshness.apply_since
        ):
            reads.append("feed")
        return work()

    s = harness.services
    auth = Authenticator(
        s.store, s.codec, s.cache, s.usage, FailureLimiter(1000, 60.0), s.clock,
        s.background.readiness, s.freshness, offload=counting,
    )  # fmt: skip
    assert s.cache.trusted
    unknown = [s.codec.issue().value for _ in range(5)]

    async def batch() -> list[BaseException | Principal]:
        return await asyncio.gather(
            *(auth.authenticate(value, None) for value in unknown), return_exceptions=True
        )

    async def two_batches() -> None:
        first = await batch()
        assert all(isinstance(outcome, InvalidCredentials) for outcome in first)
        assert reads == ["feed"]
        await batch()  # arrived after the first read began: a read of its own
        assert reads == ["feed", "feed"]

    asyncio.run(two_batches())
    asyncio.run(batch())  # another event loop: a read of its own too
    assert reads == ["feed", "feed", "feed"]


def test_every_refused_key_waits_before_its_answer_and_nothing_else_does(
    harness: Harness, admin: Principal
) -> None:
    subject = Subject(harness, limit=3)
    good = harness.create(admin, "good")
    subject.login(good.value)
    assert subject.pauses == 0  # a good key: answered at once
    subject.refused(None)
    subject.refused("")
    assert subject.pauses == 2  # no key: refused, not counted, and waits all the same
    subject.refused("apitk_junk")
    subject.refused(harness.services.codec.issue().value)
    assert subject.pauses == 4  # malformed, unknown
    fenced = harness.create(admin, "fenced", (), ["10.0.0.0/8"])
    with pytest.raises(PermissionDenied):
        subject.login(fenced.value)
    assert subject.pauses == 5
    later = harness.clock.now() + timedelta(seconds=1)
    brief = build_spec(harness.catalog, "brief", (), [], later, expires_at_given=True)
    expiring = harness.tokens.create(admin.actor, brief, admin)
    harness.clock.advance(1)
    with pytest.raises(TokenExpired):
        subject.login(expiring.value)
    assert subject.pauses == 6
    with pytest.raises(TooManyFailures):  # the limit (3 counted failures) is reached
        subject.login(good.value)
    assert subject.pauses == 7
    subject.login(good.value, "192.0.2.99")
    assert subject.pauses == 7


def test_the_refusal_delay_is_the_setting_and_zero_turns_it_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", sleep)  # the pause binds it when it is built
    pause = refusal_pause(Settings.model_fields["refusal_delay_seconds"].default)
    assert pause is not None and refusal_pause(0) is None
    services = build(isolated_settings(MEMORY_URL, {DELAY: "0.25"}), store=MemoryStore())
    unpaused = build(isolated_settings(MEMORY_URL, {DELAY: "0"}), store=MemoryStore())
    monkeypatch.undo()
    asyncio.run(pause())
    assert waited == [0.1]  # the default
    address = ipaddress.ip_address(IP)
    for built, expected in ((services, [0.1, 0.25]), (unpaused, [0.1, 0.25])):
        built.background.prepare()
        with pytest.raises(InvalidCredentials):
            asyncio.run(built.auth.authenticate("apitk_junk", address))
        assert waited == expected  # the app's own authenticator waits the setting, or not
    admin = create_admin(services, "admin")
    asyncio.run(services.auth.authenticate(admin, address))
    assert waited == [0.1, 0.25]  # a good key: no wait
    for built in (services, unpaused):
        built.lifecycle.close()
        built.store.close()


def test_cached_admits_at_once_only_what_authenticate_would_and_records_nothing(
    harness: Harness, admin: Principal
) -> None:
    """``Authenticator.cached`` (the answers a server makes without an ASGI request cycle)
    returns the Principal ``authenticate`` returns for a cached, admitted value, and None for
    everything ``authenticate`` must decide itself, having counted, noted and logged nothing."""
    subject = Subject(harness, limit=2)
    here = ipaddress.ip_address(IP)
    good = harness.create(admin, "good")
    fenced = harness.create(admin, "fenced", blocks=["10.0.0.0/8"])
    later = harness.clock.now() + timedelta(seconds=1)
    brief = build_spec(harness.catalog, "brief", (), [], later, expires_at_given=True)
    expiring = harness.tokens.create(admin.actor, brief, admin)
    rotated = harness.create(admin, "rotated")
    assert subject.cached(good.value, here) is None  # not cached yet: a lookup decides
    for issued in (good, expiring, rotated):
        subject.login(issued.value)  # now cached
    subject.login(fenced.value, "10.1.2.3")  # cached too, from an address it allows
    assert subject.cached(fenced.value, ipaddress.ip_address("10.1.2.3")) is not None
    harness.tokens.rotate(admin, rotated.token.id, 30)
    subject.login(rotated.value)  # in its grace period: authenticate admits it, read-only
    subject.outcomes.seen.clear()
    assert subject.cached(good.value, here) == Principal(good.token, here, False)
    assert subject.cached(good.value, None) == Principal(good.token, None, False)

    undecided = [
        (None, here),
        ("", here),
        ("apitk_nonsense", here),
        (ValueCodec("apitk").issue().value, here),  # well-formed, unknown
        (rotated.value, here),  # rotated out: never cached, and read-only in its grace
        (fenced.value, here),  # not from this address
    ]
    for value, address in undecided:
        assert subject.cached(value, address) is None, value
    harness.clock.advance(1)  # expires exactly now
    assert subject.cached(expiring.value, here) is None
    subject.refused("apitk_nonsense")
    subject.refused("apitk_nonsense")  # the address is at its limit: 429 from here on
    assert subject.cached(good.value, here) is None
    assert subject.outcomes.seen == [("invalid", "malformed")] * 2  # the two refusals only
    assert subject.pauses == 2

    elsewhere = ipaddress.ip_address("192.0.2.11")
    pending_before = harness.usage.pending(good.token.id)
    principal = subject.cached(good.value, elsewhere)
    assert principal == Principal(good.token, elsewhere, False)
    assert harness.usage.pending(good.token.id) == pending_before  # nothing noted yet
    assert subject.outcomes.seen == [("invalid", "malformed")] * 2
    subject.auth.admit(principal)
    assert subject.outcomes.seen[-1] == ("ok", "ok")
    assert harness.usage.pending(good.token.id) == (harness.clock.now(), ("192.0.2.11", IP))
