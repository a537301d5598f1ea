"""One storage contract, run on every Store: in memory, SQLite and PostgreSQL.

``StoreContract`` holds the tests; each subclass only says how to get a fresh store.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from apitokens.domain.audit import CREATE, DELETE, AuditEvent
from apitokens.domain.tokens import SYSTEM, Actor, Token
from apitokens.storage.memory import MemoryStore
from apitokens.storage.port import Change, Store
from apitokens.storage.sql.store import SqlStore

T0 = datetime(2030, 1, 1, tzinfo=UTC)
ACTOR = Actor("cli", SYSTEM)


def make_token(number: int, at: datetime = T0) -> Token:
    return Token(
        id=f"00000000-0000-4000-8000-{number:012d}",
        name=f"token-{number}",
        permissions=("AlertRead",),
        allowed_cidr_blocks=("10.0.0.0/8",),
        created_at=at,
        created_by=ACTOR,
    )


def digest(number: int) -> str:
    return f"{number:064x}"


def add(store: Store, token: Token, value_digest: str) -> None:
    with store.unit(write=True) as unit:
        unit.tokens.add(token, value_digest)


class StoreContract:
    def test_a_stored_token_is_found_by_id_and_by_digest(self, subject: Store) -> None:
        token = make_token(1)
        add(subject, token, digest(1))
        with subject.unit() as unit:
            assert unit.tokens.find(token.id) == token
            assert unit.tokens.find_by_digest(digest(1)) == (token, None)
            assert unit.tokens.find("missing") is None
            assert unit.tokens.find_by_digest(digest(2)) is None
            assert unit.tokens.count() == 1

    def test_a_unit_that_raises_leaves_nothing_behind(self, subject: Store) -> None:
        add(subject, make_token(1), digest(1))
        with pytest.raises(RuntimeError), subject.unit(write=True) as unit:
            unit.tokens.add(make_token(2), digest(2))
            unit.tokens.delete(make_token(1).id)
            unit.changes.record(make_token(1).id, T0)
            raise RuntimeError("abandon the change")
        with subject.unit() as unit:
            assert unit.tokens.find(make_token(1).id) is not None
            assert unit.tokens.find(make_token(2).id) is None
            assert unit.tokens.find_by_digest(digest(2)) is None
            assert unit.changes.head() == 0

    def test_save_replaces_the_changeable_fields(self, subject: Store) -> None:
        token = make_token(1)
        add(subject, token, digest(1))
        changed = replace(
            token,
            name="renamed",
            permissions=("AlertModify", "AlertRead"),
            allowed_cidr_blocks=(),
            updated_at=T0 + timedelta(seconds=5),
            updated_by=Actor(token.id, "api-token"),
            expires_at=T0 + timedelta(days=1),
        )
        with subject.unit(write=True) as unit:
            unit.tokens.save(changed)
        with subject.unit() as unit:
            assert unit.tokens.find(token.id) == changed

    def test_replace_value_retires_earlier_values_at_the_given_time(self, subject: Store) -> None:
        token = make_token(1)
        add(subject, token, digest(1))
        grace_end = T0 + timedelta(minutes=10)
        with subject.unit(write=True) as unit:
            unit.tokens.replace_value(token.id, digest(2), T0, grace_end)
        with subject.unit(write=True) as unit:
            unit.tokens.replace_value(token.id, digest(3), T0, T0 + timedelta(hours=1))
        with subject.unit() as unit:
            # A later rotation never extends an earlier value's grace.
            assert unit.tokens.find_by_digest(digest(1)) == (token, grace_end)
            assert unit.tokens.find_by_digest(digest(2)) == (token, T0 + timedelta(hours=1))
            assert unit.tokens.find_by_digest(digest(3)) == (token, None)

    def test_delete_removes_the_token_and_every_value(self, subject: Store) -> None:
        token = make_token(1)
        add(subject, token, digest(1))
        with subject.unit(write=True) as unit:
            unit.tokens.replace_value(token.id, digest(2), T0, T0 + timedelta(minutes=1))
            assert unit.tokens.delete(token.id) is True
            assert unit.tokens.delete(token.id) is False
        with subject.unit() as unit:
            assert unit.tokens.find(token.id) is None
            assert unit.tokens.find_by_digest(digest(1)) is None
            assert unit.tokens.find_by_digest(digest(2)) is None
            assert unit.tokens.count() == 0

    def test_pages_are_newest_first_and_continue_strictly_after(self, subject: Store) -> None:
        tokens = [make_token(n, T0 + timedelta(seconds=n // 2)) for n in range(7)]
        for number, token in enumerate(tokens):
            add(subject, token, digest(number))
        expected = sorted(tokens, key=lambda t: (t.created_at, t.id), reverse=True)
        seen: list[Token] = []
        after = None
        with subject.unit() as unit:
            while page := unit.tokens.page(3, after):
                seen.extend(page)
                after = (page[-1].created_at, page[-1].id)
        assert [token.id for token in seen] == [token.id for token in expected]

    def test_usage_only_moves_last_used_forward(self, subject: Store) -> None:
        token = make_token(1)
        add(subject, token, digest(1))
        later, earlier = T0 + timedelta(seconds=10), T0 + timedelta(seconds=5)
        with subject.unit(write=True) as unit:
            unit.tokens.record_usage({token.id: (later, ("10.0.0.2", "10.0.0.1"))})
        with subject.unit(write=True) as unit:
            unit.tokens.record_usage(
                {token.id: (earlier, ("10.0.0.3",)), "missing": (later, ("10.0.0.9",))}
            )
        with subject.unit() as unit:
            stored = unit.tokens.find(token.id)
        assert stored is not None
        assert stored.last_used_at == later
        assert stored.last_used_ips == ("10.0.0.2", "10.0.0.1", "10.0.0.3")

    def test_recent_addresses_keep_the_five_newest(self, subject: Store) -> None:
        token = make_token(1)
        add(subject, token, digest(1))
        for second in range(7):
            with subject.unit(write=True) as unit:
                unit.tokens.record_usage(
                    {token.id: (T0 + timedelta(seconds=second), (f"10.0.0.{second}",))}
                )
        with subject.unit() as unit:
            stored = unit.tokens.find(token.id)
        assert stored is not None
        assert stored.last_used_ips == tuple(f"10.0.0.{n}" for n in (6, 5, 4, 3, 2))

    def test_the_change_feed_is_consecutive_and_ordered(self, subject: Store) -> None:
        with subject.unit() as unit:
            assert unit.changes.head() == 0
            assert unit.changes.since(0, 10) == []
        with subject.unit(write=True) as unit:
            assert unit.changes.record("a", T0, digest(1)) == 1
            assert unit.changes.record("b", T0) == 2
        with subject.unit(write=True) as unit:
            assert unit.changes.record("a", T0 + timedelta(seconds=1)) == 3
        with subject.unit() as unit:
            assert unit.changes.head() == 3
            assert unit.changes.since(0, 10) == [
                Change(1, "a", digest(1)),
                Change(2, "b", None),
                Change(3, "a", None),
            ]
            assert unit.changes.since(1, 1) == [Change(2, "b", None)]
            assert unit.changes.since(3, 10) == []
            assert unit.changes.since(4, 10) is None  # ahead of the feed: lost

    def test_a_rolled_back_change_leaves_no_gap(self, subject: Store) -> None:
        with pytest.raises(RuntimeError), subject.unit(write=True) as unit:
            unit.changes.record("a", T0)
            raise RuntimeError("abandon")
        with subject.unit(write=True) as unit:
            assert unit.changes.record("b", T0) == 1

    def test_pruning_the_feed_loses_older_positions(self, subject: Store) -> None:
        with subject.unit(write=True) as unit:
            for second in range(4):
                unit.changes.record(f"t{second}", T0 + timedelta(seconds=second))
        with subject.unit(write=True) as unit:
            assert unit.changes.prune(T0 + timedelta(seconds=2)) == 2
        with subject.unit() as unit:
            assert unit.changes.since(0, 10) is None  # positions 1 and 2 are gone
            assert unit.changes.since(1, 10) is None
            assert unit.changes.since(2, 10) == [Change(3, "t2", None), Change(4, "t3", None)]
        with subject.unit(write=True) as unit:  # the newest change is always kept
            assert unit.changes.prune(T0 + timedelta(days=1)) == 1
        with subject.unit() as unit:
            assert unit.changes.since(3, 10) == [Change(4, "t3", None)]
            assert unit.changes.since(4, 10) == []

    def test_ended_values_are_pruned_and_current_ones_kept(self, subject: Store) -> None:
        token = make_token(1)
        add(subject, token, digest(1))
        with subject.unit(write=True) as unit:
            unit.tokens.replace_value(token.id, digest(2), T0, T0 + timedelta(seconds=10))
            unit.tokens.replace_value(token.id, digest(3), T0, T0 + timedelta(seconds=20))
        with subject.unit(write=True) as unit:
            assert unit.tokens.prune_values(T0 + timedelta(seconds=15)) == 1
        with subject.unit() as unit:
            assert unit.tokens.find_by_digest(digest(1)) is None
            assert unit.tokens.find_by_digest(digest(2)) == (token, T0 + timedelta(seconds=20))
            assert unit.tokens.find_by_digest(digest(3)) == (token, None)

    def test_audit_events_page_newest_first_with_filters(self, subject: Store) -> None:
        with subject.unit(write=True) as unit:
            for number in range(5):
                action = DELETE if number % 2 else CREATE
                unit.audit.add(
                    AuditEvent(action, f"t{number % 2}", ACTOR, "10.0.0.1", T0, {"n": number})
                )
        with subject.unit() as unit:
            everything = unit.audit.page(10, None, None, None)
            assert [event.detail["n"] for event in everything] == [4, 3, 2, 1, 0]
            ids = [event.id for event in everything]
            assert all(isinstance(event_id, int) for event_id in ids)
            assert ids == sorted(ids, reverse=True)  # type: ignore[type-var]
            before = everything[1].id
            older = unit.audit.page(10, before, None, None)
            assert [event.detail["n"] for event in older] == [2, 1, 0]
            deletes = unit.audit.page(10, None, "t1", DELETE)
            assert [event.detail["n"] for event in deletes] == [3, 1]
            assert everything[0].actor == ACTOR
            assert everything[0].client_ip == "10.0.0.1"
            assert everything[0].at == T0


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def subject(self) -> Store:
        return MemoryStore()


class TestSqlStore(StoreContract):
    @pytest.fixture
    def subject(self, store: SqlStore) -> Store:
        return store
