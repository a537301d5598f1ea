"""A lastUsedAt flush that fails keeps what it took, merged with uses noted meanwhile, and
the next flush writes it; the failure is counted and logged."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from metrics_scrape import scrape

from support.inprocess import InProcessServer
from support.protocols import ApiClientFactory


@pytest.mark.app_backends("memory")
def test_a_failed_flush_keeps_usage_and_merges_uses_made_meanwhile(
    app_server: InProcessServer, api: ApiClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = app_server
    admin = api(server, server.admin)
    token = admin.post("/api-tokens", json={"name": "used", "permissions": []}).json()
    assert server.store is not None
    store: Any = server.store
    real_unit = store.unit
    recorder = server.services.usage
    used = admin.get("/api-tokens/self", headers={"X-API-Key": token["value"]}).json()

    @contextmanager
    def failing_unit(*, write: bool = False) -> Iterator[Any]:
        if write:  # a use arrives while the flush runs, then the database refuses it
            recorder.note(token["id"], server.clock.advance(1), "192.0.2.9")
            raise ConnectionError("database went away")
        with real_unit(write=write) as unit:
            yield unit

    def unit(*, write: bool = False) -> AbstractContextManager[Any]:
        return failing_unit(write=write)

    monkeypatch.setattr(store, "unit", unit)
    server.flush()
    monkeypatch.setattr(store, "unit", real_unit)
    pending = admin.get(f"/api-tokens/{token['id']}").json()
    assert pending["lastUsedAt"] > used["lastUsedAt"]
    assert pending["lastUsedIPs"] == ["192.0.2.9", "127.0.0.1"]
    metrics = scrape(api(server))
    assert metrics.total("apitokens_last_used_flush_failures_total") == 1
    assert "lastUsedAt flush failed; will retry" in server.log_text()

    server.flush()
    with real_unit() as read:
        stored = read.tokens.find(token["id"])
    assert stored is not None
    assert stored.last_used_ips == ("192.0.2.9", "127.0.0.1")
    assert admin.get(f"/api-tokens/{token['id']}").json() == pending
