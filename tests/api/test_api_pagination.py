"""Listing across pages while tokens are created and deleted between page requests."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from api_support import TOKENS, create, error

pytestmark = pytest.mark.app_backends("memory", "sqlite", "postgresql")

PAGE = 3


def _page(admin: httpx.Client, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    params: dict[str, str | int] = {"limit": PAGE}
    if cursor is not None:
        params["cursor"] = cursor
    response = admin.get(TOKENS, params=params)
    assert response.status_code == 200, response.text
    page = response.json()
    assert len(page["results"]) <= PAGE
    return page["results"], page.get("next")


def _ids(tokens: list[dict[str, Any]]) -> list[str]:
    return [token["id"] for token in tokens]


@pytest.fixture
def initial(admin: httpx.Client) -> list[dict[str, Any]]:
    """Ten tokens besides the admin: eleven in all, newest first."""
    for index in range(10):
        create(admin, f"t{index}")
    tokens: list[dict[str, Any]] = admin.get(TOKENS).json()["results"]
    assert len(tokens) == 11
    return tokens


def test_pages_cover_every_token_once_newest_first(
    admin: httpx.Client, initial: list[dict[str, Any]]
) -> None:
    seen: list[dict[str, Any]] = []
    results, cursor = _page(admin, None)
    seen.extend(results)
    pages = 1
    while cursor is not None:
        results, cursor = _page(admin, cursor)
        seen.extend(results)
        pages += 1
    assert pages == 4
    assert _ids(seen) == _ids(initial)
    created = [token["createdAt"] for token in seen]
    assert created == sorted(created, reverse=True)


def test_last_full_page_has_no_next_or_an_empty_one(admin: httpx.Client) -> None:
    create(admin, "one")
    create(admin, "two")  # three tokens with the admin: exactly one full page
    results, cursor = _page(admin, None)
    assert len(results) == PAGE
    if cursor is not None:
        assert _page(admin, cursor) == ([], None)


def test_changes_between_pages_neither_skip_nor_repeat(
    admin: httpx.Client, initial: list[dict[str, Any]]
) -> None:
    first, cursor = _page(admin, None)
    seen = list(first)
    doomed_later = initial[7]["id"]  # not seen yet: deleted before its page is read
    deleted = {doomed_later}
    changes = iter(
        [
            lambda: admin.delete(f"{TOKENS}/{first[-1]['id']}"),  # the cursor's own token
            lambda: admin.delete(f"{TOKENS}/{doomed_later}"),
            lambda: admin.delete(f"{TOKENS}/{first[0]['id']}"),  # already seen
        ]
    )
    deleted |= {first[-1]["id"], first[0]["id"]}
    while cursor is not None:
        create(admin, "newcomer")
        change = next(changes, None)
        if change is not None:
            assert change().status_code == 204
        results, cursor = _page(admin, cursor)
        seen.extend(results)
    seen_ids = _ids(seen)
    throughout = [token_id for token_id in _ids(initial) if token_id not in deleted]
    assert len(seen_ids) == len(set(seen_ids)), "a token was repeated"
    assert [token_id for token_id in seen_ids if token_id in throughout] == throughout
    assert doomed_later not in seen_ids
    assert not {token["name"] for token in seen[PAGE:]} & {"newcomer"}


def test_cursor_of_another_list_call_still_works_after_everything_is_deleted(
    admin: httpx.Client, initial: list[dict[str, Any]]
) -> None:
    _results, cursor = _page(admin, None)
    admin_id = admin.get(f"{TOKENS}/self").json()["id"]
    for token in initial:
        if token["id"] != admin_id:
            admin.delete(f"{TOKENS}/{token['id']}")
    assert cursor is not None
    results, following = _page(admin, cursor)
    assert _ids(results) == [admin_id]
    assert following is None


def test_tampered_cursor_is_refused(admin: httpx.Client, initial: list[dict[str, Any]]) -> None:
    _results, cursor = _page(admin, None)
    assert cursor is not None
    response = admin.get(TOKENS, params={"cursor": cursor[:-3] + "%%%"})
    assert error(response, 400).startswith("cursor: ")
