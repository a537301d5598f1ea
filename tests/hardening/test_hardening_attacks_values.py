"""Attacks with values: old ones after rotation and deletion, expired ones, forged ones.

Every value that does not work gets the same 401 and message, ``invalid or missing API
key``, whatever the reason (only an expired value may say it expired): a caller cannot
tell a revoked value from one that never existed, or a near miss from a wild guess.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hardening_support import INVALID_KEY, READ, SELF, TOKENS, create, forge, key, refused

from support.inprocess import InProcessServer

ClientFactory = Callable[..., httpx.Client]


@pytest.fixture
def server(hardened_app: InProcessServer) -> InProcessServer:
    """The app in process; 127.0.0.1 and ::1 are trusted proxies: the tests choose the
    client by XFF."""
    return hardened_app


@pytest.fixture
def admin(server: InProcessServer, client: ClientFactory) -> httpx.Client:
    return client(server, server.admin)


def _invalid(admin: httpx.Client, value: str) -> dict[str, Any]:
    """The full answer to ``value``: it must be the one 401 every bad value gets."""
    answer = admin.get(SELF, headers=key(value))
    assert refused(answer, 401) == INVALID_KEY, value[:12]
    assert answer.headers["WWW-Authenticate"]
    return {"status": answer.status_code, "body": answer.json()}


def test_attack_old_value_after_rotation(server: InProcessServer, admin: httpx.Client) -> None:
    token = create(admin, "rotated", [READ])
    assert admin.get(SELF, headers=key(token["value"])).status_code == 200  # cached now
    rotated = admin.post(f"{TOKENS}/{token['id']}/rotate")
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["value"]
    assert new != token["value"]
    assert _invalid(admin, token["value"]) == _invalid(admin, forge())
    assert admin.get(SELF, headers=key(new)).json()["id"] == token["id"]
    # The old value cannot act either: not on itself, not on others.
    old = {"X-API-Key": token["value"]}
    assert refused(admin.post(f"{SELF}/rotate", headers=old), 401) == INVALID_KEY
    assert refused(admin.delete(SELF, headers=old), 401) == INVALID_KEY


def test_attack_old_value_after_self_rotation_and_a_second_rotation(
    server: InProcessServer, admin: httpx.Client, client: ClientFactory
) -> None:
    token = create(admin, "twice", [READ])
    first = client(server, token["value"]).post(f"{SELF}/rotate").json()["value"]
    second = client(server, first).post(f"{SELF}/rotate").json()["value"]
    for stale in (token["value"], first):
        _invalid(admin, stale)
    assert admin.get(SELF, headers=key(second)).status_code == 200


def test_attack_value_after_delete(server: InProcessServer, admin: httpx.Client) -> None:
    token = create(admin, "deleted", [READ])
    assert admin.get(SELF, headers=key(token["value"])).status_code == 200  # cached now
    assert admin.delete(f"{TOKENS}/{token['id']}").status_code == 204
    assert _invalid(admin, token["value"]) == _invalid(admin, forge())
    assert refused(admin.get(f"{TOKENS}/{token['id']}"), 404)
    assert refused(admin.post(f"{TOKENS}/{token['id']}/rotate"), 404)


def test_attack_expired_value(server: InProcessServer, admin: httpx.Client) -> None:
    expires = server.clock.now() + timedelta(seconds=1.5)
    token = create(admin, "short-lived", [READ], expiresAt=expires.isoformat())
    assert admin.get(SELF, headers=key(token["value"])).status_code == 200
    server.clock.advance_past(expires, margin=0.2)
    answer = admin.get(SELF, headers=key(token["value"]))
    assert "expired" in refused(answer, 401)
    # Expired is final: it cannot even rotate itself back to life.
    rotation = admin.post(f"{SELF}/rotate", headers=key(token["value"]))
    assert refused(rotation, 401)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda v: v[:-1] + ("A" if v[-1] != "A" else "B"), id="checksum-changed"),
        pytest.param(
            lambda v: v[:10] + ("A" if v[10] != "A" else "B") + v[11:], id="secret-changed"
        ),
        pytest.param(lambda v: v[:-1], id="one-short"),
        pytest.param(lambda v: v + "A", id="one-long"),
        pytest.param(lambda v: v.upper(), id="upper-case"),
        pytest.param(lambda v: "apitk-" + v[6:], id="wrong-separator"),
        pytest.param(lambda v: "other_" + v[6:], id="wrong-prefix"),
        pytest.param(lambda v: v[:-6] + "!" * 6, id="checksum-not-base62"),
        pytest.param(lambda v: forge(), id="random-tail-valid-checksum"),
        pytest.param(
            lambda v: forge(secret=v[6:48] + ("A" if v[48] != "A" else "B")),
            id="secret-changed-checksum-recomputed",
        ),
        pytest.param(lambda v: v[:6] + "A" * 49, id="all-same-character"),
        pytest.param(lambda v: "apitk_" + "é" * 49, id="non-ascii"),
    ],
)
def test_attack_valid_prefix_with_broken_checksum_or_random_tail(
    server: InProcessServer, admin: httpx.Client, mangle: Callable[[str], str]
) -> None:
    value = create(admin, "genuine", [READ])["value"]
    forged = mangle(value)
    assert forged != value
    answer = admin.get(SELF, headers={"X-API-Key": forged.encode("utf-8")})
    assert refused(answer, 401) == INVALID_KEY
    assert admin.get(SELF, headers=key(value)).status_code == 200


def test_attack_value_elsewhere_than_the_header_is_not_a_credential(
    server: InProcessServer, admin: httpx.Client, client: ClientFactory
) -> None:
    """The API reads X-API-Key only: not a query parameter, not a cookie, not Bearer."""
    value = create(admin, "placement", [READ])["value"]
    anonymous = client(server)
    attempts = [
        anonymous.get(SELF, params={"X-API-Key": value}),
        anonymous.get(SELF, params={"api_key": value}),
        anonymous.get(SELF, headers={"Cookie": f"X-API-Key={value}"}),
        anonymous.get(SELF, headers={"Authorization": f"Bearer {value}"}),
        anonymous.get(SELF, headers={"X-Api-Key-": value}),
    ]
    for answer in attempts:
        assert refused(answer, 401) == INVALID_KEY


def test_attack_value_in_a_path_is_not_echoed(server: InProcessServer, admin: httpx.Client) -> None:
    """Someone pastes a value where an id goes: 404, and the answer does not repeat it."""
    value = create(admin, "pasted", [READ])["value"]
    for method, path in (
        ("GET", f"{TOKENS}/{value}"),
        ("DELETE", f"{TOKENS}/{value}"),
        ("POST", f"{TOKENS}/{value}/rotate"),
        ("GET", f"/no-such-route/{value}"),
    ):
        answer = admin.request(method, path)
        assert answer.status_code == 404, (method, path, answer.text)
        assert value not in answer.text
