"""The `AsyncClient` against the app in process: the same contract as the blocking client."""

from __future__ import annotations

from typing import Any

import pytest
from api_messages import (
    LACKS_MODIFY,
    MODIFY,
    NOT_FOUND,
    READ,
    UNAUTHORIZED,
    UNKNOWN_ID,
    UNKNOWN_VALUE,
    not_a_block,
)

from apitokens.client import (
    Actor,
    AsyncClient,
    BadRequest,
    Forbidden,
    NotFound,
    Unauthorized,
)
from support.processes import RunningServer


def _client_of(server: Any, value: str | None) -> AsyncClient:
    """An `AsyncClient` of ``server`` authenticated with a token value just issued."""
    assert value is not None
    return AsyncClient(server.url, value, retries=0, transport=server.async_transport())


async def test_create_get_update_rotate_delete(server: Any, async_client: AsyncClient) -> None:
    admin = await async_client.self_token()
    created = await async_client.create("async", [READ], ["127.0.0.0/8"])
    assert created.value is not None
    assert (created.name, created.permissions) == ("async", (READ,))
    assert created.allowed_cidr_blocks == ("127.0.0.0/8",)
    assert created.created_by == Actor(id=admin.id, type="api-token")
    fetched = await async_client.get(created.id)
    assert (fetched.id, fetched.value) == (created.id, None)
    updated = await async_client.update(created.id, "renamed", [READ, MODIFY])
    assert (updated.name, set(updated.permissions)) == ("renamed", {READ, MODIFY})
    assert updated.allowed_cidr_blocks == ("127.0.0.0/8",)
    assert updated.updated_by == Actor(id=admin.id, type="api-token")
    rotated = await async_client.rotate(created.id)
    assert rotated.value is not None
    assert rotated.value != created.value
    assert rotated.rotated_at is not None
    async with AsyncClient(
        server.url, rotated.value, retries=0, transport=server.async_transport()
    ) as fresh:
        assert (await fresh.self_token()).id == created.id
    async with AsyncClient(
        server.url, created.value, retries=0, transport=server.async_transport()
    ) as stale:
        with pytest.raises(Unauthorized):
            await stale.self_token()
    assert await async_client.delete(created.id) is None
    with pytest.raises(NotFound):
        await async_client.get(created.id)


async def test_async_pages(async_client: AsyncClient) -> None:
    admin_id = (await async_client.self_token()).id
    created = [(await async_client.create(f"page-{index}", [READ])).id for index in range(7)]
    expected = [*reversed(created), admin_id]
    pages = [await async_client.list(limit=3)]
    while pages[-1].next is not None:
        pages.append(await async_client.list(limit=3, cursor=pages[-1].next))
    assert [len(page.results) for page in pages] == [3, 3, 2]
    assert [token.id for page in pages for token in page.results] == expected
    assert [token.id async for token in async_client.iter_tokens(page_size=3)] == expected


async def test_async_errors(server: Any, async_client: AsyncClient) -> None:
    with pytest.raises(BadRequest) as bad:
        await async_client.create("bad", [READ], ["300.0.0.0/8"])
    assert (bad.value.status_code, bad.value.message) == (400, not_a_block("300.0.0.0/8"))
    with pytest.raises(NotFound) as missing:
        await async_client.get(UNKNOWN_ID)
    assert (missing.value.status_code, missing.value.message) == (404, NOT_FOUND)
    async with AsyncClient(
        server.url, UNKNOWN_VALUE, retries=0, transport=server.async_transport()
    ) as stranger:
        with pytest.raises(Unauthorized) as unauthorized:
            await stranger.list()
    assert (unauthorized.value.status_code, unauthorized.value.message) == (401, UNAUTHORIZED)
    reader = await async_client.create("reader", [READ])
    assert reader.value is not None
    async with AsyncClient(
        server.url, reader.value, retries=0, transport=server.async_transport()
    ) as narrow:
        with pytest.raises(Forbidden) as forbidden:
            await narrow.delete(UNKNOWN_ID)
    assert (forbidden.value.status_code, forbidden.value.message) == (403, LACKS_MODIFY)


async def test_an_async_client_given_only_a_url_talks_plain_http_to_a_real_server(
    sqlite_server: RunningServer,
) -> None:
    # No transport given: the client makes its own, without TLS for a plain-HTTP URL.
    async with AsyncClient(sqlite_server.url, sqlite_server.admin, retries=0) as client:
        assert (await client.self_token()).name == "admin"
