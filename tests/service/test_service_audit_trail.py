"""Reading the audit trail on the services: permission, filters, pages and their cursors."""

from __future__ import annotations

import pytest
from service_harness import Harness

from apitokens.domain import audit
from apitokens.domain.errors import PermissionDenied, ValidationFailed
from apitokens.domain.permissions import TOKEN_READ
from apitokens.domain.tokens import Principal


def test_reading_the_trail_needs_the_read_permission(harness: Harness, admin: Principal) -> None:
    reader = harness.login(harness.create(admin, "reader", (TOKEN_READ,)).value)
    nobody = harness.login(harness.create(admin, "nobody").value)
    assert [e.action for e in harness.services.audit.page(reader, None, None, None, None).events]
    with pytest.raises(PermissionDenied):
        harness.services.audit.page(nobody, None, None, None, None)


def test_an_unknown_action_lists_the_accepted_ones(harness: Harness, admin: Principal) -> None:
    with pytest.raises(ValidationFailed) as caught:
        harness.services.audit.page(admin, None, None, None, "token.explode")
    assert caught.value.message == "action: unknown action; accepted: " + ", ".join(audit.ACTIONS)
    with pytest.raises(ValidationFailed, match="limit"):
        harness.services.audit.page(admin, 0, None, None, None)
    with pytest.raises(ValidationFailed, match="cursor"):
        harness.services.audit.page(admin, None, "garbage!", None, None)


def test_pages_are_newest_first_and_end_without_a_cursor(
    harness: Harness, admin: Principal
) -> None:
    made = [harness.create(admin, f"t{n}").token.id for n in range(5)]  # five create events
    trail = harness.services.audit
    seen: list[str | None] = []
    cursor: str | None = None
    sizes = []
    while True:
        page = trail.page(admin, 2, cursor, None, audit.CREATE)
        sizes.append(len(page.events))
        seen += [event.token_id for event in page.events]
        if page.next is None:
            break
        cursor = page.next
    # the bootstrap token's own create event is the oldest
    assert seen[:5] == made[::-1]
    assert len(seen) == 6
    assert sizes == [2, 2, 2]


def test_a_page_that_ends_exactly_at_the_last_event_has_no_next(
    harness: Harness, admin: Principal
) -> None:
    one = harness.create(admin, "one").token.id
    trail = harness.services.audit
    page = trail.page(admin, 1, None, one, None)
    assert [(e.action, e.token_id) for e in page.events] == [(audit.CREATE, one)]
    assert page.next is None
    harness.tokens.delete(admin, one)
    first = trail.page(admin, 1, None, one, None)
    assert [e.action for e in first.events] == [audit.DELETE]
    assert first.next is not None
    second = trail.page(admin, 1, first.next, one, None)
    assert [e.action for e in second.events] == [audit.CREATE]
    assert second.next is None
    assert trail.page(admin, 5, None, one, audit.ROTATE).events == []
    assert trail.page(admin, 5, None, one, audit.ROTATE).next is None
