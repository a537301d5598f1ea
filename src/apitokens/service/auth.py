"""Authentication: from a presented ``X-API-Key`` and a client address to a Principal.

Every failure (missing, malformed, unknown, deleted, rotated out) raises the same
InvalidCredentials with the same message; only the log learns the precise reason. An
expired key may say so (the contract allows it), since expiry is not a secret.
"""

from __future__ import annotations

import logging
from typing import NoReturn, Protocol

from apitokens.domain import audit
from apitokens.domain.audit import AuditEvent
from apitokens.domain.clock import Clock
from apitokens.domain.errors import (
    InvalidCredentials,
    PermissionDenied,
    TokenExpired,
    TooManyFailures,
)
from apitokens.domain.network import IPAddress
from apitokens.domain.tokens import Credential, Principal
from apitokens.domain.values import ValueCodec, digests_match
from apitokens.service.cache import CredentialCache
from apitokens.service.limiter import FailureLimiter
from apitokens.service.usage import UsageRecorder
from apitokens.storage.port import Store

log = logging.getLogger("apitokens.auth")

# Log reasons -> the metric's reason label (a fixed vocabulary).
_REASON_LABELS = {"rotated out": "rotated_out", "digest mismatch": "unknown"}


class AuthOutcomes(Protocol):
    def authentication(self, outcome: str, reason: str) -> None:
        """Count one decision: ``ok``; ``invalid`` with reason ``missing``, ``malformed``,
        ``unknown`` or ``rotated_out``; ``expired``, ``forbidden_address``, ``rate_limited``
        (their reason repeats the outcome). Called once per authentication, on the hot path."""


class _Uncounted:
    def authentication(self, outcome: str, reason: str) -> None:
        return None


class Authenticator:
    def __init__(
        self,
        store: Store,
        codec: ValueCodec,
        cache: CredentialCache,
        usage: UsageRecorder,
        limiter: FailureLimiter,
        clock: Clock,
        outcomes: AuthOutcomes | None = None,
    ) -> None:
        self.store = store
        self.codec = codec
        self.cache = cache
        self.usage = usage
        self.limiter = limiter
        self.clock = clock
        self.outcomes: AuthOutcomes = outcomes or _Uncounted()

    def from_memory(self, presented: str | None, address: IPAddress | None) -> Principal | None:
        """Decide from memory alone; None when the database must be asked.

        Safe to call on the event loop: it never does I/O.
        """
        ip = str(address) if address is not None else None
        self._check_limit(ip)
        digest = self.codec.parse(presented)
        if digest is None:
            self._fail("malformed" if presented else "missing", ip)
        if self.cache.epoch is None:
            return None
        credential = self.cache.get(digest)
        if credential is None:
            return None
        return self._admit(credential, digest, address)

    def authenticate(self, presented: str | None, address: IPAddress | None) -> Principal:
        """Authenticate, asking the database on a cache miss (blocking I/O)."""
        ip = str(address) if address is not None else None
        self._check_limit(ip)
        digest = self.codec.parse(presented)
        if digest is None:
            self._fail("malformed" if presented else "missing", ip)
        credential = self.cache.get(digest) if self.cache.epoch is not None else None
        if credential is None:
            credential = self._load(digest, ip)
        return self._admit(credential, digest, address)

    def _load(self, digest: str, ip: str | None) -> Credential:
        generation = self.cache.generation
        with self.store.unit() as unit:
            found = unit.tokens.find_by_digest(digest)
        if found is None:
            self._fail("unknown", ip)
        credential = Credential.of(found[0], digest, found[1])
        if found[1] is None or found[1] > self.clock.now():
            # A value rotated out is never cached: refusing it then costs one lookup, as
            # refusing an unknown value does, so timing cannot tell the two apart.
            self.cache.put(credential, generation)
        return credential

    def _admit(self, credential: Credential, digest: str, address: IPAddress | None) -> Principal:
        ip = str(address) if address is not None else None
        if not digests_match(credential.digest, digest):
            self._fail("digest mismatch", ip)
        now = self.clock.now()
        token = credential.token
        if credential.valid_until is not None and credential.valid_until <= now:
            self.usage.event(AuditEvent(audit.ROTATED_VALUE_USED, token.id, None, ip, now))
            self._fail("rotated out", ip)
        if token.is_expired(now):
            self.limiter.fail(ip)
            log.info("authentication refused", extra={"reason": "expired", "token_id": token.id})
            self.outcomes.authentication("expired", "expired")
            raise TokenExpired()
        if not credential.allows(address):
            self.outcomes.authentication("forbidden_address", "forbidden_address")
            log.info("address refused", extra={"token_id": token.id, "client_ip": ip})
            raise PermissionDenied(
                f"this API key may not be used from {ip or 'an unknown address'}; its "
                f"allowedCIDRBlocks are {', '.join(token.allowed_cidr_blocks)}"
            )
        self.usage.note(token.id, now, ip)
        self.outcomes.authentication("ok", "ok")
        return Principal(token, address)

    def _check_limit(self, ip: str | None) -> None:
        try:
            self.limiter.check(ip)
        except TooManyFailures:
            self.outcomes.authentication("rate_limited", "rate_limited")
            raise

    def _fail(self, reason: str, ip: str | None) -> NoReturn:
        log.info("authentication refused", extra={"reason": reason, "client_ip": ip})
        self.outcomes.authentication("invalid", _REASON_LABELS.get(reason, reason))
        if self.limiter.fail(ip):
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
