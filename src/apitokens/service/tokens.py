"""The token use cases of the API: create, read, list, update, rotate, delete."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from apitokens.domain import audit, validation
from apitokens.domain import events as lifecycle
from apitokens.domain.audit import AuditEvent
from apitokens.domain.authorization import Action, authorize, unknown_target
from apitokens.domain.clock import Clock
from apitokens.domain.errors import NotFound, PermissionDenied, TooManyFailures, TooManyRotations
from apitokens.domain.tokens import Actor, Principal, Token, TokenSpec
from apitokens.domain.validation import Lifetimes
from apitokens.domain.values import ValueCodec
from apitokens.service.cache import CredentialCache
from apitokens.service.events import EventSink, NoEvents
from apitokens.service.known import KnownDigests
from apitokens.service.limiter import FailureLimiter
from apitokens.service.pagination import check_limit, decode_position, encode_position
from apitokens.service.usage import Pending, UsageRecorder
from apitokens.storage.port import Store, UnitOfWork

SELF = "self"
ROTATION_LIMIT = 10
ROTATION_WINDOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Issued:
    """A token beside its value: the only place a value exists after it is made."""

    token: Token
    value: str

    def __repr__(self) -> str:
        return f"Issued(token={self.token.id!r})"


@dataclass(frozen=True, slots=True)
class Page:
    tokens: Sequence[Token]
    next: str | None


class TokenService:
    def __init__(
        self,
        store: Store,
        codec: ValueCodec,
        clock: Clock,
        lifetimes: Lifetimes,
        cache: CredentialCache,
        usage: UsageRecorder,
        rotations: FailureLimiter | None = None,
        known: KnownDigests | None = None,
        *,
        events: EventSink | None = None,
    ) -> None:
        self.store = store
        self.codec = codec
        self.clock = clock
        self.lifetimes = lifetimes
        self.cache = cache
        self.usage = usage
        # Rotations per token (a token may always rotate itself, so this bounds the
        # digests and audit rows one value can make); per instance, like every limiter.
        # (not ``rotations or ...``: a limiter with no entries is falsy, it has a __len__)
        self.rotations = (
            rotations
            if rotations is not None
            else FailureLimiter(ROTATION_LIMIT, ROTATION_WINDOW_SECONDS)
        )
        self.known = known or KnownDigests()  # digests made here are known here at once
        self.events: EventSink = events or NoEvents()

    # -- reads ------------------------------------------------------------------------

    def current(self, principal: Principal) -> Token:
        """The calling token itself, as of this request: no database access."""
        return principal.token.with_usage(*self.usage.pending(principal.token.id))

    def get(self, principal: Principal, token_id: str) -> Token:
        """The token ``token_id`` (``self``: the caller, from memory).

        Raises PermissionDenied without Read (for another token), NotFound if there is none.
        """
        if token_id in (SELF, principal.token.id):
            authorize(principal, Action.READ, principal.token)
            return self.current(principal)
        authorize(principal, Action.READ)
        pending = self.usage.pending(token_id)  # before the read: see _with_usage
        with self.store.unit() as unit:
            token = unit.tokens.find(token_id)
        if token is None:
            raise NotFound("no API token with that id")
        return token.with_usage(*pending)

    def list(self, principal: Principal, limit: int | None, cursor: str | None) -> Page:
        """One page of tokens, newest first. Raises PermissionDenied without Read,
        ValidationFailed for a bad limit or cursor."""
        authorize(principal, Action.LIST)
        size = check_limit(limit)
        after = decode_position(cursor)
        pending = self.usage.snapshot()  # before the read: see _with_usage
        with self.store.unit() as unit:
            tokens = unit.tokens.page(size + 1, after)
        more = len(tokens) > size
        tokens = [self._with_usage(token, pending) for token in tokens[:size]]
        last = tokens[-1] if more else None
        return Page(tokens, encode_position((last.created_at, last.id)) if last else None)

    # -- writes -----------------------------------------------------------------------

    def create(self, actor: Actor, spec: TokenSpec, principal: Principal | None = None) -> Issued:
        """Create a token; ``principal`` is the calling token (None: the system, unlimited).

        Raises PermissionDenied if the new token would be wider than the caller on any
        axis (``domain.authorization``), ValidationFailed for an expiry the policy refuses.
        """
        now = self.clock.now()
        expires_at = self.lifetimes.resolve(spec.expires_at, spec.expires_at_given, now)
        limit = principal.token.expires_at if principal is not None else None
        if not spec.expires_at_given and limit is not None:
            # No expiry asked for: the widest allowed, which ends with the caller's own.
            expires_at = limit if expires_at is None else min(expires_at, limit)
        issued = self.codec.issue()
        token = Token(
            id=str(uuid.uuid4()),
            name=spec.name,
            permissions=spec.held(),
            allowed_cidr_blocks=spec.allowed_cidr_blocks or (),
            created_at=now,
            created_by=actor,
            updated_at=now,
            updated_by=actor,
            expires_at=expires_at,
        )
        self._authorize(principal, Action.CREATE, None, result=token)
        with self.store.unit(write=True) as unit:
            unit.tokens.add(token, issued.digest)
            unit.changes.record(token.id, now, issued.digest)
            self._audit(unit, audit.CREATE, token.id, principal, actor, now)
            self.events.emit(unit, lifecycle.CREATED, token, actor, _ip(principal))
        self.known.add(issued.digest)
        return Issued(token, issued.value)

    def update(self, principal: Principal, token_id: str, spec: TokenSpec) -> Token:
        """Replace name and permissions (and blocks and expiry when given).

        Raises PermissionDenied (see ``domain.authorization``), NotFound, ValidationFailed.
        """
        authorize(principal, Action.UPDATE)
        pending = self.usage.snapshot()  # before the read: see _with_usage
        with self.store.unit(write=True) as unit:
            current = self._locked(unit, principal, Action.UPDATE, token_id)
            now = self.clock.now()  # under the row lock: updatedAt follows the commit order
            expires_at = current.expires_at
            if spec.expires_at_given:
                expires_at = self.lifetimes.check(spec.expires_at, now)
            token = replace(
                current,
                name=spec.name,
                permissions=spec.held(current),  # omitted servicePermissions: kept
                allowed_cidr_blocks=(
                    current.allowed_cidr_blocks
                    if spec.allowed_cidr_blocks is None
                    else spec.allowed_cidr_blocks
                ),
                expires_at=expires_at,
                updated_at=now,
                updated_by=principal.actor,
            )
            self._authorize(principal, Action.UPDATE, current, result=token)
            unit.tokens.save(token)
            unit.changes.record(token.id, now)
            self._audit(unit, audit.UPDATE, token.id, principal, principal.actor, now)
            self.events.emit(unit, lifecycle.UPDATED, token, principal.actor, _ip(principal))
        self.cache.drop((token.id,))
        return self._with_usage(token, pending)

    def rotate(self, principal: Principal, token_id: str, grace_seconds: int | None) -> Issued:
        """Issue a new value; the old ones end after ``grace_seconds`` (default 0).

        Raises PermissionDenied (see ``domain.authorization``), NotFound, ValidationFailed.
        """
        grace = validation.grace_period(grace_seconds)
        own = token_id in (SELF, principal.token.id)
        authorize(principal, Action.ROTATE, principal.token if own else None)
        self._check_rotations(principal.token.id if own else token_id)
        issued = self.codec.issue()
        pending = self.usage.snapshot()  # before the read: see _with_usage
        with self.store.unit(write=True) as unit:
            current = self._locked(unit, principal, Action.ROTATE, token_id)
            now = self.clock.now()  # under the row lock: rotatedAt follows the commit order
            token = replace(current, rotated_at=now, updated_at=now, updated_by=principal.actor)
            unit.tokens.replace_value(token.id, issued.digest, now, now + grace)
            unit.tokens.save(token)
            unit.changes.record(token.id, now, issued.digest)
            detail = {"gracePeriodSeconds": int(grace.total_seconds())}
            self._audit(unit, audit.ROTATE, token.id, principal, principal.actor, now, detail)
            self.events.emit(
                unit, lifecycle.ROTATED, token, principal.actor, _ip(principal), detail
            )
        self.rotations.fail(token.id)
        self.known.add(issued.digest)
        self.cache.drop((token.id,))
        return Issued(self._with_usage(token, pending), issued.value)

    def delete(self, principal: Principal, token_id: str) -> None:
        """Delete a token (``self`` always may). Raises PermissionDenied, NotFound."""
        own = token_id in (SELF, principal.token.id)
        target = principal.token.id if own else token_id
        authorize(principal, Action.DELETE, principal.token if own else None)
        event = AuditEvent(
            audit.DELETE, target, principal.actor, principal.client_ip, self.clock.now()
        )
        if not self.revoke(target, event):
            raise NotFound("no API token with that id")

    def revoke(self, token_id: str, event: AuditEvent) -> bool:
        """Delete a token and record ``event``, in one unit of work; False if it was gone.

        Every path that removes a token (DELETE, a leaked-value report) comes through here,
        so each one stops the token authenticating at once, on every instance.
        """
        with self.store.unit(write=True) as unit:
            self.events.revoking(unit, token_id, event)  # emits nothing if it is gone
            if not unit.tokens.delete(token_id):
                return False
            unit.changes.record(token_id, event.at)
            unit.audit.add(event)
        self.cache.drop((token_id,))
        self.usage.forget(token_id)
        return True

    # -- helpers ----------------------------------------------------------------------

    def _check_rotations(self, token_id: str) -> None:
        try:
            self.rotations.check(token_id)
        except TooManyFailures as error:
            raise TooManyRotations(error.retry_after) from None

    def _locked(
        self, unit: UnitOfWork, principal: Principal, action: Action, token_id: str
    ) -> Token:
        """Load the target token for a change, holding its row lock, and authorize it."""
        target = principal.token.id if token_id == SELF else token_id
        token = unit.tokens.find(target, lock=True)
        if token is None:
            raise unknown_target(principal, action)
        if action is not Action.UPDATE:  # update is authorized against its result
            self._authorize(principal, action, token)
        return token

    def _authorize(
        self,
        principal: Principal | None,
        action: Action,
        target: Token | None,
        *,
        result: Token | None = None,
    ) -> None:
        """``authorize``, and a refusal is recorded in the audit trail."""
        try:
            authorize(principal, action, target, result=result)
        except PermissionDenied as refusal:
            if principal is not None:
                self.usage.event(
                    AuditEvent(
                        audit.REFUSED,
                        target.id if target else None,
                        principal.actor,
                        principal.client_ip,
                        self.clock.now(),
                        {"action": str(action), "reason": refusal.message},
                    )
                )
            raise

    @staticmethod
    def _with_usage(token: Token, pending: Pending) -> Token:
        """The token with the uses not yet written to its row.

        ``pending`` must be taken *before* the row is read: a flush committing between the
        read and a later look at the pending uses would be in neither, and ``lastUsedAt``
        would seem to move back.
        """
        return token.with_usage(*pending.get(token.id, (None, ())))

    @staticmethod
    def _audit(
        unit: UnitOfWork,
        action: str,
        token_id: str,
        principal: Principal | None,
        actor: Actor,
        at: datetime,
        detail: Mapping[str, object] | None = None,
    ) -> None:
        ip = principal.client_ip if principal else None
        unit.audit.add(AuditEvent(action, token_id, actor, ip, at, dict(detail or {})))


def _ip(principal: Principal | None) -> str | None:
    return principal.client_ip if principal else None
