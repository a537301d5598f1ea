"""A page reads one row beyond its size, never the whole table (a listing must cost the
same on a million rows as on ten)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from service_harness import build_harness

from apitokens.storage.memory import MemoryStore, MemoryUnit


class RecordingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.limits: list[tuple[str, Any]] = []

    @contextlib.contextmanager
    def unit(self, *, write: bool = False) -> Iterator[MemoryUnit]:
        with super().unit(write=write) as unit:
            tokens_page, audit_page = unit.tokens.page, unit.audit.page

            def page_tokens(limit: int, *args: Any) -> Any:
                self.limits.append(("tokens", limit))
                return tokens_page(limit, *args)

            def page_audit(limit: int, *args: Any) -> Any:
                self.limits.append(("audit", limit))
                return audit_page(limit, *args)

            unit.tokens.page = page_tokens  # type: ignore[method-assign]
            unit.audit.page = page_audit  # type: ignore[method-assign]
            yield unit


def test_pages_ask_the_store_for_one_row_more_than_they_show() -> None:
    store = RecordingStore()
    harness = build_harness(store)
    admin = harness.login(harness.bootstrap().value)
    for n in range(4):
        harness.create(admin, f"t{n}")
    store.limits.clear()
    assert len(harness.tokens.list(admin, 2, None).tokens) == 2
    assert len(harness.tokens.list(admin, None, None).tokens) == 5
    assert len(harness.services.audit.page(admin, 3, None, None, None).events) == 3
    assert len(harness.services.audit.page(admin, None, None, None, None).events) == 5
    assert store.limits == [("tokens", 3), ("tokens", 101), ("audit", 4), ("audit", 101)]


class RecordingLifecycleStore(MemoryStore):
    """Records the limit of every read of webhooks, deliveries and due expiry warnings."""

    def __init__(self) -> None:
        super().__init__()
        self.limits: list[tuple[str, Any]] = []

    @contextlib.contextmanager
    def unit(self, *, write: bool = False) -> Iterator[MemoryUnit]:
        with super().unit(write=write) as unit:
            hooks_page, outbox_page = unit.webhooks.page, unit.outbox.page
            unwarned = unit.expiry_warnings.unwarned

            def page_hooks(limit: int, *args: Any) -> Any:
                self.limits.append(("webhooks", limit))
                return hooks_page(limit, *args)

            def page_outbox(webhook_id: str, limit: int, *args: Any) -> Any:
                self.limits.append(("deliveries", limit))
                return outbox_page(webhook_id, limit, *args)

            def due(level: int, until: Any, limit: int) -> Any:
                self.limits.append(("unwarned", limit))
                return unwarned(level, until, limit)

            unit.webhooks.page = page_hooks  # type: ignore[method-assign]
            unit.outbox.page = page_outbox  # type: ignore[method-assign]
            unit.expiry_warnings.unwarned = due  # type: ignore[method-assign]
            yield unit


def test_webhook_and_delivery_pages_read_one_row_more() -> None:
    store = RecordingLifecycleStore()
    harness = build_harness(store, webhook_allow_private=True)
    admin = harness.login(harness.bootstrap().value)
    hooks = harness.services.lifecycle.webhooks
    made = [hooks.create(admin, "http://receiver.internal/", None, str(n)) for n in range(3)]
    harness.create(admin, "ci")
    store.limits.clear()
    assert len(hooks.page(admin, 2, None).webhooks) == 2
    assert len(hooks.page(admin, None, None).webhooks) == 3
    assert len(hooks.deliveries(admin, made[0].id, 1, None).deliveries) == 1
    assert len(hooks.deliveries(admin, made[0].id, None, None).deliveries) == 1
    assert store.limits == [
        ("webhooks", 3),
        ("webhooks", 101),
        ("deliveries", 2),
        ("deliveries", 101),
    ]


def test_the_expiry_scan_reads_one_row_to_decide_then_a_batch_at_a_time() -> None:
    from datetime import timedelta

    from apitokens.service.events import NoEvents
    from apitokens.service.expiry import ExpiryScanner

    store = RecordingLifecycleStore()
    harness = build_harness(store)
    admin = harness.login(harness.bootstrap().value)
    for n in range(3):
        spec = harness.spec(f"t{n}")
        soon = harness.clock.now() + timedelta(minutes=30 + n)
        spec = type(spec)(spec.name, spec.permissions, spec.allowed_cidr_blocks, soon, True)
        harness.tokens.create(admin.actor, spec, admin)
    store.limits.clear()
    scan = ExpiryScanner(store, harness.clock, NoEvents(), [3600], batch=2)
    assert scan.run_once() == 3
    # expiry itself: nothing due (one row read); an hour: 2, then 1 (fewer than a batch)
    assert store.limits == [("unwarned", 1), ("unwarned", 1), ("unwarned", 2), ("unwarned", 2)]
    store.limits.clear()
    assert scan.run_once() == 0
    assert store.limits == [("unwarned", 1), ("unwarned", 1)]
