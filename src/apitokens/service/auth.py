"""Authentication: from a presented ``X-API-Key`` and a client address to a Principal.

One path, in this order: the failure limit of the address (429), the value's shape and
checksum (no lookup for junk), the credential (memory first, else the database, off the
event loop), then the credential's state (rotated out, expired, address). Every failure
of the value itself (missing, malformed, unknown, deleted, rotated out past its grace)
raises the same InvalidCredentials with the same message; only the log learns the precise
reason. An expired key may say so (the contract allows it), since expiry is not a secret.

Values are looked up by their SHA-256 digest (a primary key, and the cache's key): the
digest of a 256-bit random value reveals nothing about other values, so no comparison of
secrets happens anywhere on this path.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, Protocol

from apitokens import logs
from apitokens.domain import audit
from apitokens.domain.audit import AuditEvent
from apitokens.domain.clock import Clock
from apitokens.domain.errors import (
    InvalidCredentials,
    PermissionDenied,
    TokenExpired,
    TooManyFailures,
)
from apitokens.domain.network import IPAddress, address_text
from apitokens.domain.tokens import Credential, Principal
from apitokens.domain.values import ValueCodec
from apitokens.service.background import Readiness
from apitokens.service.cache import CredentialCache
from apitokens.service.freshness import Freshness
from apitokens.service.limiter import FailureLimiter
from apitokens.service.usage import UsageRecorder
from apitokens.storage.port import Store

log = logging.getLogger("apitokens.auth")

Offload = Callable[[Callable[[], Any]], Awaitable[Any]]
"""Runs blocking work off the event loop (a thread pool)."""

Pause = Callable[[], Awaitable[None]]
"""Waits before a refusal is answered (``asyncio.sleep`` of the refusal delay)."""


# Log reasons -> the metric's reason label. A rotated-out value is counted as unknown:
# the two must not be told apart from outside, and /metrics needs no key.
_REASON_LABELS = {"rotated out": "unknown"}


class AuthOutcomes(Protocol):
    def authentication(self, outcome: str, reason: str) -> None:
        """Count one decision: ``ok``; ``invalid`` with reason ``missing``, ``malformed``
        or ``unknown``; ``expired``, ``forbidden_address``, ``rate_limited`` (their reason
        repeats the outcome). Called once per authentication, on the hot path."""

    def credential_lookup(self, found: bool) -> None:
        """Count one database lookup of a digest (a cache miss the filter let through);
        ``found``: whether a stored value had that digest."""


class _Uncounted:
    def authentication(self, outcome: str, reason: str) -> None:
        return None

    def credential_lookup(self, found: bool) -> None:
        return None


async def _to_thread(work: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(work)


class Authenticator:
    def __init__(
        self,
        store: Store,
        codec: ValueCodec,
        cache: CredentialCache,
        usage: UsageRecorder,
        limiter: FailureLimiter,
        clock: Clock,
        readiness: Readiness,
        freshness: Freshness,
        outcomes: AuthOutcomes | None = None,
        offload: Offload | None = None,
        pause: Pause | None = None,
    ) -> None:
        self.store = store
        self.codec = codec
        self.cache = cache
        self.usage = usage
        self.limiter = limiter
        self.clock = clock
        self.readiness = readiness
        self.freshness = freshness
        self.known = freshness.known
        self.outcomes: AuthOutcomes = outcomes or _Uncounted()
        self._offload: Offload = offload or _to_thread
        self._pause = pause
        self._gathering: asyncio.Task[None] | None = None

    async def authenticate(self, presented: str | None, address: IPAddress | None) -> Principal:
        """The Principal for ``presented`` from ``address``.

        Raises TooManyFailures (429), InvalidCredentials or TokenExpired (401),
        PermissionDenied for a disallowed address (403), StorageUnavailable (503).
        Does no I/O on the calling thread: a cache miss is looked up through ``offload``.

        Every refusal, with a key or without one, is answered after ``pause`` (the refusal
        delay): a client that waits for each answer, as one over HTTP/1.1 does, then gets at
        most one refusal per connection per delay. A database outage (503) is answered at
        once.
        """
        principal = self.cached(presented, address)
        if principal is not None:
            self.admit(principal)
            return principal
        ip = address_text(address)
        try:
            self._check_limit(ip)
            if not presented:
                self._refuse("missing", ip, counted=False)
            # Memory first: a cached digest is one of a value that was well-formed when it
            # was stored, so the format and checksum are checked only for a value not cached.
            sized = self.codec.digest_if_sized(presented)
            credential = self.cache.get(sized) if sized is not None else None
            if credential is None:
                digest = self.codec.parse(presented)
                if digest is None:
                    self._refuse("malformed", ip)
                self.readiness.check()
                if not await self._may_exist(digest):
                    self._refuse("unknown", ip)
                credential = await self._offload(functools.partial(self._load, digest, ip))
            return self._admit(credential, address, ip)
        except (InvalidCredentials, TokenExpired, PermissionDenied, TooManyFailures):
            if self._pause is not None:
                await self._pause()
            raise

    def cached(self, presented: str | None, address: IPAddress | None) -> Principal | None:
        """The Principal ``authenticate`` would return at once, from memory: a current value
        whose credential is cached, not expired, allowed from ``address``, from an address
        under its failure limit. None in every other case (``authenticate`` decides those).

        Records nothing: the caller that goes on with the principal calls ``admit``."""
        if not presented:
            return None
        sized = self.codec.digest_if_sized(presented)
        credential = self.cache.get(sized) if sized is not None else None
        if credential is None or credential.valid_until is not None:
            return None
        try:
            self.limiter.check(address_text(address))
        except TooManyFailures:
            return None
        token = credential.token
        if token.is_expired(self.clock.now()) or not credential.allows(address):
            return None
        return Principal(token, address)

    def admit(self, principal: Principal) -> None:
        """Record a successful authentication (``lastUsedAt``, ``lastUsedIPs``, the count)."""
        self.usage.note(principal.token.id, self.clock.now(), address_text(principal.address))
        self.outcomes.authentication("ok", "ok")

    async def _may_exist(self, digest: str) -> bool:
        """False when the digest is certainly not stored: then no lookup is made.

        Only trusted while the change feed is followed (the cache is trusted). A digest the
        filter lacks may have been made a moment ago on another instance, so the feed is
        read first, in a read shared with every request waiting at the same time.
        """
        if not self.cache.trusted or self.known.might_contain(digest):
            return True
        await self._feed_read()
        return self.known.might_contain(digest)

    async def _feed_read(self) -> None:
        """Wait for a read of the change feed that begins after this call.

        Every request that arrives before such a read begins joins it: a flood of unknown
        values costs one thread hop and one feed read per batch, not per value.
        """
        loop = asyncio.get_running_loop()
        gathering = self._gathering
        if gathering is None or gathering.get_loop() is not loop or gathering.done():
            gathering = loop.create_task(self._read_feed())
            self._gathering = gathering
        await asyncio.shield(gathering)

    async def _read_feed(self) -> None:
        await asyncio.sleep(0)  # let the requests that arrive meanwhile join this read
        self._gathering = None  # from here on, arrivals need a read that begins later
        joined = time.monotonic()  # every request of this batch had arrived by now
        # A read that began after that (the poll, another batch) serves this batch too.
        await self._offload(functools.partial(self.freshness.apply_since, joined))

    def _load(self, digest: str, ip: str | None) -> Credential:
        generation = self.cache.generation
        with self.store.unit() as unit:
            found = unit.tokens.find_by_digest(digest)
        self.outcomes.credential_lookup(found is not None)
        if found is None:
            self._refuse("unknown", ip)
        credential = Credential.of(found[0], digest, found[1])
        if found[1] is None:
            # Only current values are cached. A rotated-out value costs one lookup each
            # time, as an unknown value does, so timing does not tell the two apart.
            self.cache.put(credential, generation)
        return credential

    def _admit(
        self, credential: Credential, address: IPAddress | None, ip: str | None
    ) -> Principal:
        now = self.clock.now()
        token = credential.token
        rotated_out = credential.valid_until is not None
        if rotated_out:
            in_grace = credential.valid_until is not None and credential.valid_until > now
            detail = {"inGracePeriod": in_grace}
            self.usage.event(AuditEvent(audit.ROTATED_VALUE_USED, token.id, None, ip, now, detail))
            if not in_grace:
                self._refuse("rotated out", ip)
        if token.is_expired(now):
            self.limiter.fail(ip)
            log.info("authentication refused", extra={"reason": "expired", "token_id": token.id})
            self.outcomes.authentication("expired", "expired")
            raise TokenExpired()
        if not credential.allows(address):
            self.outcomes.authentication("forbidden_address", "forbidden_address")
            log.info("address refused", extra={"token_id": token.id, "client_ip": ip})
            self.usage.event(AuditEvent(audit.ADDRESS_REFUSED, token.id, None, ip, now))
            raise PermissionDenied(
                "this API key may not be used from this address (see its allowedCIDRBlocks)"
            )
        principal = Principal(token, address, rotated_out)
        self.admit(principal)
        return principal

    def _check_limit(self, ip: str | None) -> None:
        try:
            self.limiter.check(ip)
        except TooManyFailures:
            self.outcomes.authentication("rate_limited", "rate_limited")
            raise

    def _refuse(self, reason: str, ip: str | None, *, counted: bool = True) -> NoReturn:
        """Refuse with the one invalid-credentials answer.

        ``counted``: only values that were presented count against the address's failure
        limit; a request without a key (a browser, a crawler, a health check) does not.
        """
        # Every refused value logs this line (a flood too): the cheap way, same line.
        logs.info(log, "authentication refused", {"reason": reason, "client_ip": ip}, True)
        self.outcomes.authentication("invalid", _REASON_LABELS.get(reason, reason))
        if counted and self.limiter.fail(ip):
            self.usage.event(
                AuditEvent(
                    audit.AUTH_FAILURE_BURST,
                    None,
                    None,
                    ip,
                    self.clock.now(),
                    {"failures": self.limiter.limit, "windowSeconds": self.limiter.window},
                )
            )
        raise InvalidCredentials(reason)
