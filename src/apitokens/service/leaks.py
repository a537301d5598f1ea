"""Leaked-value reports: anyone who finds a value may hand it in; a live one is revoked.

The endpoint is unauthenticated on purpose (whoever finds a value in a public repository
rarely holds a token of this service), so it gives nothing back: the answer is the same
for a working value, an unknown one and junk. It cannot be used as an oracle either: the
only thing a reporter could learn from timing is that a value *was* valid, and by then it
is revoked; anyone holding a working value can already revoke it (``DELETE
/api-tokens/self``). Reports are limited per address. The value is never logged.
"""

from __future__ import annotations

import logging
from datetime import datetime

from apitokens.domain import audit
from apitokens.domain.audit import AuditEvent
from apitokens.domain.clock import Clock
from apitokens.domain.errors import TooManyFailures
from apitokens.domain.tokens import Token
from apitokens.domain.values import ValueCodec
from apitokens.service.background import Readiness
from apitokens.service.limiter import FailureLimiter
from apitokens.service.tokens import TokenService
from apitokens.storage.port import Store

log = logging.getLogger("apitokens.leaks")


class TooManyReports(TooManyFailures):
    what = "leaked-value reports from this address"


class LeakReports:
    def __init__(
        self,
        store: Store,
        codec: ValueCodec,
        tokens: TokenService,
        limiter: FailureLimiter,
        clock: Clock,
        readiness: Readiness,
    ) -> None:
        self.store = store
        self.codec = codec
        self.tokens = tokens
        self.limiter = limiter
        self.clock = clock
        self.readiness = readiness

    def admit(self, ip: str | None) -> None:
        """Count one report from ``ip``; raise TooManyReports (429) over the limit."""
        try:
            self.limiter.check(ip)
        except TooManyFailures as error:
            raise TooManyReports(error.retry_after) from None
        self.limiter.fail(ip)

    def report(self, presented: str, ip: str | None) -> None:
        """Revoke the token a reported value belongs to, if the value could still work.

        Revocation is deletion, as ``DELETE`` does: the token stops authenticating at once
        everywhere. A value of an expired token is revoked too (an update could extend
        the expiry and bring it back); a value rotated out past its grace period can never
        work again, so its token is kept and the report only recorded.
        """
        digest = self.codec.parse(presented)
        if digest is None:
            log.info("leak report ignored", extra={"reason": "malformed", "client_ip": ip})
            return
        self.readiness.check()
        with self.store.unit() as unit:
            found = unit.tokens.find_by_digest(digest)
        if found is None:
            log.info("leak report ignored", extra={"reason": "unknown", "client_ip": ip})
            return
        token, valid_until = found
        now = self.clock.now()
        if valid_until is not None and valid_until <= now:
            self._record_rotated_out(token, ip, now)
        else:
            self._revoke(token, ip, now)

    def _revoke(self, token: Token, ip: str | None, now: datetime) -> None:
        if not self.tokens.revoke(token.id, _event(token, ip, now, revoked=True)):
            return  # revoked meanwhile by another report or a DELETE
        log.warning("leaked value reported; token revoked", extra={"token_id": token.id})

    def _record_rotated_out(self, token: Token, ip: str | None, now: datetime) -> None:
        with self.store.unit(write=True) as unit:
            unit.audit.add(_event(token, ip, now, revoked=False))
        log.warning(
            "leaked value reported; it was rotated out already", extra={"token_id": token.id}
        )


def _event(token: Token, ip: str | None, now: datetime, *, revoked: bool) -> AuditEvent:
    detail: dict[str, object] = {"name": token.name, "revoked": revoked}
    return AuditEvent(audit.LEAK_REPORTED, token.id, None, ip, now, detail)
