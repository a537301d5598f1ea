"""Per-token daily usage: successful authentications per UTC day (extension)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from apitokens.domain.authorization import Action, authorize
from apitokens.domain.clock import Clock
from apitokens.domain.errors import NotFound, ValidationFailed
from apitokens.domain.tokens import Principal
from apitokens.service.usage import UsageRecorder
from apitokens.storage.port import Store

DEFAULT_DAYS = 30
MAX_DAYS = 90
SELF = "self"


class UsageReport:
    def __init__(self, store: Store, clock: Clock, recorder: UsageRecorder) -> None:
        self.store = store
        self.clock = clock
        self.recorder = recorder

    def daily(
        self, principal: Principal, token_id: str, days: int | None
    ) -> Sequence[tuple[date, int]]:
        """Requests per UTC day for the last ``days`` days (today included), oldest first,
        days without use as 0. Written counts from every instance, plus this instance's
        uses not yet written. Needs OrganizationAPITokenRead unless the token asks about
        itself. Raises ValidationFailed (400) for ``days`` outside 1..90, NotFound (404).
        """
        span = DEFAULT_DAYS if days is None else days
        if not 1 <= span <= MAX_DAYS:
            raise ValidationFailed("days", f"must be between 1 and {MAX_DAYS}")
        own = token_id in (SELF, principal.token.id)
        authorize(principal, Action.READ_USAGE, principal.token if own else None)
        target = principal.token.id if own else token_id
        last = self.clock.now().date()
        first = last - timedelta(days=span - 1)
        with self.recorder.steady():
            pending = self.recorder.day_counts(target)
            with self.store.unit() as unit:
                if not own and unit.tokens.find(target) is None:
                    raise NotFound("no API token with that id")
                stored = unit.usage_days.between(target, first, last)
        return [
            (day, stored.get(day, 0) + pending.get(day, 0))
            for day in (first + timedelta(days=n) for n in range(span))
        ]
