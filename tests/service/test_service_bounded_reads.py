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
