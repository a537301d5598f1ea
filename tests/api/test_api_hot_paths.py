"""``http.hotpaths``: ``GET /api-tokens/self`` and ``GET /verify`` answered ahead of FastAPI
give exactly what the FastAPI routes give.

In process, on one application: every request is sent through the app itself, through
``HotPaths`` in front of it, and as the server's protocol sends it (``HotPaths.answer_now``
first, ``HotPaths`` when that has no answer ready), and the answers (status, body,
headers), the access-log lines and the increments of the request and authentication
counters must be the same each way. ``apitokens serve`` serves ``HotPaths``
(``serving.build_app``), so the suites that run real servers exercise it too;
``tests/serving/test_serving_answer_now.py`` checks the protocol's side.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from apitokens.bootstrap import create_admin_token
from apitokens.domain.values import ValueCodec
from apitokens.http.app import create_app
from apitokens.http.hotpaths import HotPaths
from apitokens.serving import with_hot_paths
from apitokens.settings import Settings
from ops.metrics_scrape import Scrape

READ = "OrganizationAPITokenRead"
MODIFY = "OrganizationAPITokenModify"
COMPARED_HEADERS = (
    "content-type",
    "content-length",
    "cache-control",
    "retry-after",
    "www-authenticate",
    "x-token-id",
    "x-token-name",
    "x-token-permissions",
)


class Pair:
    """One application, reachable through FastAPI (``plain``) and through ``HotPaths``."""

    def __init__(self, tmp_path: Path) -> None:
        self.settings = Settings(
            database_url=f"sqlite:///{tmp_path}/apitokens.db", refusal_delay_seconds=0
        )
        self.admin = create_admin_token(self.settings, "admin").value
        self.app = create_app(self.settings)
        self.hot = with_hot_paths(self.app)
        self.now = NowFirst(self.hot)
        self.plain_client = _client(self.app)
        self.hot_client = _client(self.hot)
        self.now_client = _client(self.now)

    async def counts(self) -> dict[str, float]:
        """Request, authentication and duration counts, leaving out the scrapes themselves."""
        scrape = Scrape((await self.plain_client.get("/metrics")).text)
        names = {
            "requests": "apitokens_http_requests_total",
            "authentications": "apitokens_authentications_total",
            "durations": "apitokens_http_request_duration_seconds_count",
        }
        return {
            key: sum(
                value
                for (sample, labels), value in scrape.samples.items()
                if sample == name and ("route", "/metrics") not in labels
            )
            for key, name in names.items()
        }


class NowFirst:
    """What the server's protocol does with a whole bodyless GET: ``answer_now`` first, the
    ASGI app when that has no answer ready. ``answered``: how many were answered at once."""

    def __init__(self, hot: HotPaths) -> None:
        self.hot = hot
        self.answered = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            response = self.hot.answer_now(scope)
            if response is not None:
                self.answered += 1
                await response(scope, receive, send)
                return
        await self.hot(scope, receive, send)


def _client(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    made = Pair(tmp_path)
    async with made.app.router.lifespan_context(made.app):  # prepares the database
        yield made
    await made.plain_client.aclose()
    await made.hot_client.aclose()
    await made.now_client.aclose()


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    fields = ("method", "route", "status", "token_id", "client_ip")
    return [
        {name: getattr(record, name) for name in fields}
        for record in caplog.records
        if record.name == "apitokens.access"
    ]


def _body(answer: httpx.Response) -> Any:
    """The body; for a token, without ``lastUsedAt`` (the first request of a pair moves it)."""
    if not answer.content:
        return b""
    body = answer.json()
    if isinstance(body, dict) and "lastUsedAt" in body:
        body["lastUsedAt"] = "(moves)"
    return body


async def _both(
    pair: Pair, caplog: pytest.LogCaptureFixture, path: str, headers: dict[str, str]
) -> httpx.Response:
    """Send each way; assert the answers, log lines and counter increments agree, and that
    an answer is made at once exactly when it is a success."""
    answers: list[httpx.Response] = []
    lines: list[list[dict[str, Any]]] = []
    increments: list[dict[str, float]] = []
    # Changes not yet applied from the feed (a token just created) are applied now: applied
    # between two of the sends below, they could drop a credential the first send cached.
    pair.app.state.services.freshness.apply()
    answered = pair.now.answered
    for client in (pair.plain_client, pair.hot_client, pair.now_client):
        before = await pair.counts()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="apitokens.access"):
            answers.append(await client.get(path, headers=headers))
        lines.append(_access_lines(caplog))
        after = await pair.counts()
        increments.append({name: after[name] - before[name] for name in after})
    plain, hot, now = answers
    for other in (hot, now):
        assert other.status_code == plain.status_code, path
        assert _body(other) == _body(plain), path
        for name in COMPARED_HEADERS:
            assert other.headers.get(name) == plain.headers.get(name), (path, name)
        assert "server" not in other.headers
    assert lines[0] == lines[1] == lines[2] and len(lines[0]) == 1, lines
    assert increments[0] == increments[1] == increments[2], increments
    assert pair.now.answered - answered == (1 if plain.status_code in (200, 204) else 0), path
    return hot


async def test_self_answers_as_the_route_does(pair: Pair, caplog: pytest.LogCaptureFixture) -> None:
    unknown = ValueCodec("apitk").issue().value
    answer = await _both(pair, caplog, "/api-tokens/self", {"X-API-Key": pair.admin})
    assert answer.status_code == 200 and answer.json()["name"] == "admin"
    for headers, status in (
        ({}, 401),
        ({"X-API-Key": ""}, 401),
        ({"X-API-Key": "not-a-token"}, 401),
        ({"X-API-Key": unknown}, 401),
        ({"Authorization": f"Bearer {pair.admin}"}, 401),  # /self takes X-API-Key only
    ):
        assert (await _both(pair, caplog, "/api-tokens/self", headers)).status_code == status


async def test_verify_answers_as_the_route_does(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    admin = pair.admin
    cases: list[tuple[str, dict[str, str], int]] = [
        ("/verify", {"X-API-Key": admin}, 204),
        (f"/verify?permission={READ}", {"X-API-Key": admin}, 204),
        (f"/verify?permission={READ},{MODIFY}", {"X-API-Key": admin}, 204),
        (f"/verify?permission={READ}&permission={MODIFY}", {"X-API-Key": admin}, 204),
        ("/verify", {"X-API-Key": admin, "X-Required-Permission": READ}, 204),
        ("/verify?permission=NoSuchPermission", {"X-API-Key": admin}, 400),
        ("/verify", {"Authorization": f"Bearer {admin}"}, 204),
        ("/verify", {"Authorization": f"bearer {admin}"}, 204),
        ("/verify", {"Authorization": f"Basic {admin}"}, 401),
        ("/verify", {"Authorization": "Bearer"}, 401),
        ("/verify", {"X-API-Key": admin, "Authorization": "Bearer nonsense"}, 204),
        ("/verify", {"X-API-Key": "", "Authorization": f"Bearer {admin}"}, 204),
        ("/verify", {}, 401),
        ("/verify", {"X-API-Key": "apitk_nonsense"}, 401),
    ]
    for path, headers, status in cases:
        answer = await _both(pair, caplog, path, headers)
        assert answer.status_code == status, (path, headers, answer.text)


async def test_a_token_without_the_permission_is_403_both_ways(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    created = await pair.plain_client.post(
        "/api-tokens",
        headers={"X-API-Key": pair.admin},
        json={"name": "reader", "permissions": [READ]},
    )
    reader = created.json()["value"]
    path = f"/verify?permission={MODIFY}"
    assert (await _both(pair, caplog, path, {"X-API-Key": reader})).status_code == 403
    answer = await _both(pair, caplog, "/verify", {"X-API-Key": reader})
    assert answer.headers["x-token-permissions"] == READ


async def test_other_requests_go_to_the_app(pair: Pair) -> None:
    key = {"X-API-Key": pair.admin}
    for method, path, status in (
        ("HEAD", "/api-tokens/self", 200),
        ("GET", "/api-tokens/self/", 404),  # the app's own answer: no redirects
        ("POST", "/verify", 204),
        ("GET", "/healthz", 200),
    ):
        plain = await pair.plain_client.request(method, path, headers=key)
        hot = await pair.hot_client.request(method, path, headers=key)
        assert (hot.status_code, _body(hot)) == (plain.status_code, _body(plain))
        assert hot.status_code == status, (method, path, hot.text)


async def test_after_start_runs_once_start_up_is_complete(tmp_path: Path) -> None:
    """``apitokens serve`` freezes the collector's view of the started process through
    this hook (``serving.freeze_collector``): it must run after the app's start-up has
    completed, once, and leave the lifespan messages as they were."""
    settings = Settings(database_url=f"sqlite:///{tmp_path}/apitokens.db")
    create_admin_token(settings, "admin")
    events: list[str] = []
    hot = with_hot_paths(create_app(settings), after_start=lambda: events.append("after start"))
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    started = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if len(incoming) == 1:
            await started.wait()
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        events.append(message["type"])
        if message["type"] == "lifespan.startup.complete":
            started.set()

    await hot({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert events == [
        "after start",
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
