"""What a client user expects beyond the API calls: defaults from the environment, per-call
timeouts, a client of one's own, retries on 429 and 503 that honour ``Retry-After`` for
idempotent calls only, and a partial update. Offline (``httpx.MockTransport``); the waits go
through an injected ``sleep`` that records them, so no test waits for time to pass."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from apitokens.client import AsyncClient, Client, RateLimited, ServerError

SECRET = "apitk_offline_secret_value"
TOKEN_JSON: dict[str, Any] = {
    "id": "tok-1",
    "name": "ci",
    "permissions": ["OrganizationAPITokenRead"],
    "allowedCIDRBlocks": ["10.0.0.0/8"],
    "createdAt": "2024-05-01T12:00:00.123Z",
    "createdBy": {"id": "admin", "type": "system"},
}
Handler = Callable[[httpx.Request], httpx.Response]


def replies(*responses: httpx.Response, seen: list[httpx.Request]) -> Handler:
    queue = list(responses)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0)

    return handle


def client_with(handler: Handler, waits: list[float], **kwargs: Any) -> Client:
    return Client(
        "http://api.test",
        SECRET,
        transport=httpx.MockTransport(handler),
        sleep=waits.append,
        **kwargs,
    )


def test_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []
    monkeypatch.setenv("APITOKENS_URL", "http://from-env.test/")
    monkeypatch.setenv("APITOKENS_TOKEN", SECRET)
    handler = replies(httpx.Response(200, json=TOKEN_JSON), seen=seen)
    with Client(transport=httpx.MockTransport(handler)) as client:
        assert repr(client) == "Client(base_url='http://from-env.test')"
        assert client.self_token().id == "tok-1"
    assert str(seen[0].url) == "http://from-env.test/api-tokens/self"
    assert seen[0].headers["X-API-Key"] == SECRET


def test_without_a_token_only_the_anonymous_report_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("APITOKENS_TOKEN", raising=False)
    seen: list[httpx.Request] = []
    handler = replies(httpx.Response(202, json={"message": "report received"}), seen=seen)
    with Client("http://api.test", transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(ValueError, match="no token: pass token= or set APITOKENS_TOKEN"):
            client.list()
        client.report_leak("apitk_found_somewhere")
    assert [(r.method, r.url.path) for r in seen] == [("POST", "/leaked-values")]
    assert "X-API-Key" not in seen[0].headers
    assert json.loads(seen[0].content) == {"value": "apitk_found_somewhere"}


def test_timeouts_per_client_and_per_call() -> None:
    seen: list[httpx.Request] = []
    ok = httpx.Response(200, json=TOKEN_JSON)
    handler = replies(ok, ok, seen=seen)
    with client_with(handler, [], timeout=4.0) as client:
        client.get("tok-1")
        client.get("tok-1", timeout=0.5)
    assert [r.extensions["timeout"]["read"] for r in seen] == [4.0, 0.5]


def test_a_client_of_ones_own_is_used_and_left_open() -> None:
    seen: list[httpx.Request] = []
    handler = replies(httpx.Response(200, json=TOKEN_JSON), seen=seen)
    own = httpx.Client(transport=httpx.MockTransport(handler), headers={"X-Trace": "t-1"})
    with Client("http://api.test", SECRET, http_client=own) as client:
        client.get("tok-1")
    assert not own.is_closed
    assert (seen[0].headers["X-Trace"], seen[0].headers["X-API-Key"]) == ("t-1", SECRET)
    own.close()
    with pytest.raises(ValueError, match="give transport or http_client, not both"):
        Client("http://x", SECRET, transport=httpx.MockTransport(handler), http_client=own)


@pytest.mark.parametrize("status", [429, 503])
def test_idempotent_calls_wait_retry_after_and_retry(status: int) -> None:
    seen: list[httpx.Request] = []
    waits: list[float] = []
    busy = httpx.Response(status, json={"message": "busy"}, headers={"Retry-After": "3"})
    handler = replies(busy, busy, httpx.Response(200, json=TOKEN_JSON), seen=seen)
    with client_with(handler, waits, retries=2) as client:
        assert client.get("tok-1").id == "tok-1"
    assert (len(seen), waits) == (3, [3.0, 3.0])


def test_without_retry_after_the_backoff_doubles_then_the_error_is_raised() -> None:
    seen: list[httpx.Request] = []
    waits: list[float] = []
    busy = httpx.Response(503, json={"message": "the token database is unavailable"})
    handler = replies(busy, busy, busy, seen=seen)
    client = client_with(handler, waits, retries=2, backoff=0.5)
    with client, pytest.raises(ServerError) as info:
        client.delete("tok-1")
    assert (len(seen), waits, info.value.status_code) == (3, [0.5, 1.0], 503)


def test_a_retry_after_longer_than_the_limit_is_not_waited_for() -> None:
    seen: list[httpx.Request] = []
    waits: list[float] = []
    slow = httpx.Response(429, json={"message": "slow down"}, headers={"Retry-After": "3600"})
    client = client_with(replies(slow, seen=seen), waits, max_retry_wait=30)
    with client, pytest.raises(RateLimited) as info:
        client.list()
    assert (len(seen), waits, info.value.retry_after) == (1, [], 3600.0)


@pytest.mark.parametrize("operation", ["create", "update", "rotate", "report_leak"])
def test_non_idempotent_calls_are_never_retried_on_429_or_503(operation: str) -> None:
    seen: list[httpx.Request] = []
    waits: list[float] = []
    busy = httpx.Response(429, json={"message": "busy"}, headers={"Retry-After": "1"})
    calls: dict[str, Callable[[Client], object]] = {
        "create": lambda c: c.create("ci", []),
        "update": lambda c: c.update("tok-1", "ci", []),
        "rotate": lambda c: c.rotate("tok-1"),
        "report_leak": lambda c: c.report_leak("apitk_x"),
    }
    client = client_with(replies(busy, seen=seen), waits, retries=5)
    with client, pytest.raises(RateLimited):
        calls[operation](client)
    assert (len(seen), waits) == (1, [])


def test_partial_update_keeps_what_it_is_not_given() -> None:
    seen: list[httpx.Request] = []
    renamed = {**TOKEN_JSON, "name": "renamed"}
    handler = replies(
        httpx.Response(200, json=TOKEN_JSON), httpx.Response(200, json=renamed), seen=seen
    )
    with client_with(handler, []) as client:
        assert client.update("tok-1", name="renamed").name == "renamed"
    assert [(r.method, r.url.path) for r in seen] == [
        ("GET", "/api-tokens/tok-1"),
        ("POST", "/api-tokens/tok-1"),
    ]
    assert json.loads(seen[1].content) == {
        "name": "renamed",
        "permissions": ["OrganizationAPITokenRead"],
    }
    both: list[httpx.Request] = []
    handler = replies(httpx.Response(200, json=TOKEN_JSON), seen=both)
    with client_with(handler, []) as client:
        client.update("tok-1", name="n", permissions=[], allowed_cidr_blocks=[])
    assert [r.method for r in both] == ["POST"]  # nothing to read back
    assert json.loads(both[0].content) == {"name": "n", "permissions": [], "allowedCIDRBlocks": []}


async def test_async_client_retries_and_partial_update_alike() -> None:
    seen: list[httpx.Request] = []
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    busy = httpx.Response(503, json={"message": "busy"}, headers={"Retry-After": "2"})
    handler = replies(
        busy, httpx.Response(200, json=TOKEN_JSON), httpx.Response(200, json=TOKEN_JSON),
        seen=seen,
    )  # fmt: skip
    transport = httpx.MockTransport(handler)
    async with AsyncClient("http://api.test", SECRET, transport=transport, sleep=sleep) as client:
        await client.update("tok-1", permissions=["RuleRead"])
    assert [(r.method, r.url.path) for r in seen] == [
        ("GET", "/api-tokens/tok-1"),
        ("GET", "/api-tokens/tok-1"),
        ("POST", "/api-tokens/tok-1"),
    ]
    assert waits == [2.0]
    assert json.loads(seen[2].content) == {"name": "ci", "permissions": ["RuleRead"]}
