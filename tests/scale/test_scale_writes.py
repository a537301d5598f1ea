"""Concurrent creates, updates and deletes through two instances, with listings walking
the pages meanwhile: no 5xx, no torn row, no page that skips or repeats a token."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from scale_helpers import (
    MODIFY,
    READ,
    Call,
    Pair,
    PairFactory,
    alternate,
    assert_no_server_error,
    body_of,
    create_token,
    send_all_at_once,
)

from support.clients import api as make_client
from support.processes import RunningServer
from support.protocols import ApiClientFactory

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

STABLE = 12
"""Tokens that exist before the writes start and are never deleted."""
VICTIMS = 12
CREATES = 16
UPDATES_PER_TOKEN = 4
PAGE = 5
PERMISSION_SETS: tuple[list[str], ...] = ([READ], [MODIFY], [READ, MODIFY], [])


def _version(name: str) -> int:
    return int(name.rsplit("-v", 1)[1])


def _update(server: RunningServer, admin: str, token_id: str, version: int) -> Call:
    """Rename to ``<id prefix>-v<version>`` with the permissions the version picks: a row
    whose name and permissions disagree would be a torn write."""
    body = {"name": f"{token_id[:8]}-v{version}", "permissions": _permissions(version)}
    return Call(server, admin, "POST", f"/api-tokens/{token_id}", body)


def _permissions(version: int) -> list[str]:
    return PERMISSION_SETS[version % len(PERMISSION_SETS)]


def _walk(client: httpx.Client) -> list[dict[str, Any]]:
    """Every page of the listing, in order; fails on a non-200 page."""
    tokens: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": PAGE, **({"cursor": cursor} if cursor else {})}
        response = client.get("/api-tokens", params=params)
        assert response.status_code == 200, response.text
        page = body_of(response)
        tokens.extend(page["results"])
        cursor = page.get("next")
        if not cursor:
            return tokens


def _check_walk(tokens: list[dict[str, Any]], stable: set[str]) -> None:
    ids = [token["id"] for token in tokens]
    assert len(ids) == len(set(ids)), "a token was listed twice"
    assert stable <= set(ids), "a token that existed throughout was skipped"
    keys = [(token["createdAt"], token["id"]) for token in tokens]
    assert keys == sorted(keys, reverse=True), "the listing is not newest first"


def _walk_until(
    pair: Pair, stop: threading.Event, stable: set[str], walks: list[int], errors: list[str]
) -> None:
    try:
        clients = [make_client(server, pair.admin) for server in pair.both]
        while not stop.is_set():
            _check_walk(_walk(clients[len(walks) % 2]), stable)
            walks.append(1)
        for client in clients:
            client.close()
    except AssertionError as error:
        errors.append(str(error))


def test_concurrent_writes_keep_rows_and_listings_whole(
    start_pair: PairFactory, api: ApiClientFactory
) -> None:
    pair = start_pair()
    admin = api(pair.a, pair.admin)
    stable = [create_token(admin, f"stable-{index}") for index in range(STABLE)]
    victims = [create_token(admin, f"victim-{index}") for index in range(VICTIMS)]
    calls: list[Call] = []
    servers = alternate(pair, 10_000)
    for token in stable:
        for version in range(1, UPDATES_PER_TOKEN + 1):
            calls.append(_update(next(servers), pair.admin, token["id"], version))
    calls += [
        Call(next(servers), pair.admin, "DELETE", f"/api-tokens/{token['id']}") for token in victims
    ]
    calls += [
        Call(
            next(servers),
            pair.admin,
            "POST",
            "/api-tokens",
            {"name": f"new-{i}", "permissions": [READ]},
        )
        for i in range(CREATES)
    ]

    stop, walks, walk_errors = threading.Event(), list[int](), list[str]()
    walker = threading.Thread(
        target=_walk_until, args=(pair, stop, {t["id"] for t in stable}, walks, walk_errors)
    )
    walker.start()
    try:
        responses = send_all_at_once(calls)
    finally:
        stop.set()
        walker.join()

    assert_no_server_error(responses)
    assert {r.status_code for r in responses} <= {200, 204}, [r.text for r in responses]
    assert walks and not walk_errors, walk_errors
    created = {
        body_of(r)["id"]
        for r in responses
        if r.request.method == "POST" and r.request.url.path == "/api-tokens"
    }
    _check_final_state(pair, api, stable, victims, created, responses)


def _check_final_state(
    pair: Pair,
    api: ApiClientFactory,
    stable: list[dict[str, Any]],
    victims: list[dict[str, Any]],
    created: set[str],
    responses: list[httpx.Response],
) -> None:
    expected = {t["id"] for t in stable} | created
    for server in pair.both:
        listed = _walk(api(server, pair.admin))
        _check_walk(listed, {t["id"] for t in stable})
        assert {t["id"] for t in listed} == expected | {_admin_id(pair, api)}
        assert not {t["id"] for t in victims} & {t["id"] for t in listed}
        by_id = {t["id"]: t for t in listed}
        for token in stable:
            row = by_id[token["id"]]
            assert set(row["permissions"]) == set(_permissions(_version(row["name"]))), row
            last = _last_updates(responses, token["id"])
            assert row["updatedAt"] == last[0]["updatedAt"]
            assert row["name"] in {body["name"] for body in last}


def _last_updates(responses: list[httpx.Response], token_id: str) -> list[dict[str, Any]]:
    """The updates of ``token_id`` with the latest ``updatedAt`` (taken under the row lock,
    so the last to commit is among them; several only if they share a millisecond)."""
    updates = [
        body_of(r)
        for r in responses
        if r.request.method == "POST" and r.request.url.path == f"/api-tokens/{token_id}"
    ]
    latest = max(body["updatedAt"] for body in updates)
    return [body for body in updates if body["updatedAt"] == latest]


def _admin_id(pair: Pair, api: ApiClientFactory) -> str:
    token_id: str = body_of(api(pair.a, pair.admin).get("/api-tokens/self"))["id"]
    return token_id
