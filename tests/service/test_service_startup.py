"""A database that is down at start is waited for, not fatal (in-process, real SQLite).

The database file's directory does not exist when the app starts, so SQLite cannot open
it: the app must serve /healthz, answer 503 elsewhere, and start serving once the
directory appears (migrations included), without a restart.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from apitokens.bootstrap import create_admin_token
from apitokens.http.app import create_app
from apitokens.settings import Settings

POLL_GUARD_SECONDS = 20.0


async def test_a_database_down_at_start_is_retried_until_it_answers(tmp_path: Path) -> None:
    missing = tmp_path / "not-yet"
    settings = Settings(database_url=f"sqlite:///{missing}/apitokens.db")
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://apitokens") as client,
    ):
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert (ready.status_code, ready.json()) == (
            503,
            {"message": "the token database is unavailable", "code": "unavailable"},
        )
        refused = await client.get("/api-tokens", headers={"X-API-Key": "apitk_x"})
        assert refused.status_code == 401  # malformed: no database needed to refuse it
        well_formed = app.state.services.codec.issue().value
        unavailable = await client.get("/api-tokens", headers={"X-API-Key": well_formed})
        assert unavailable.status_code == 503
        assert unavailable.headers["retry-after"] == "1"

        missing.mkdir()  # the database becomes reachable
        deadline = time.monotonic() + POLL_GUARD_SECONDS
        while (await client.get("/readyz")).status_code != 200:  # waits for the retry task
            assert time.monotonic() < deadline, "never became ready"
            await asyncio.sleep(0.05)

        admin = create_admin_token(settings, "admin").value
        listed = await client.get("/api-tokens", headers={"X-API-Key": admin})
        assert listed.status_code == 200
        assert [token["name"] for token in listed.json()["results"]] == ["admin"]
