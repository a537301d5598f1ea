"""Attacks on authorization: privilege escalation, and narrow tokens acting on others.

The rules (docs/decisions.md, "Authorization"): create and update may grant only what the
caller holds; GET needs OrganizationAPITokenRead, POST and DELETE need
OrganizationAPITokenModify, checked before existence; rotating or updating another token
needs every permission it holds, while deleting it needs only Modify (a narrow "janitor"
token can revoke a leaked administrator token, but never obtain its value); ``self`` may
always be read, rotated and deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hardening_support import (
    INVALID_KEY,
    MANAGER,
    MODIFY,
    READ,
    SELF,
    TOKENS,
    create,
    key,
    refused,
    spec,
)

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


def _as(client: ClientFactory, server: InProcessServer, token: dict[str, Any]) -> httpx.Client:
    return client(server, token["value"])


def _unchanged(admin: httpx.Client, token: dict[str, Any]) -> None:
    """The token still has its name, permissions and blocks, and its value still works."""
    now = admin.get(f"{TOKENS}/{token['id']}")
    assert now.status_code == 200, now.text
    for field in ("name", "permissions", "allowedCIDRBlocks", "rotatedAt"):
        assert now.json()[field] == token[field], field
    assert admin.get(SELF, headers=key(token["value"])).status_code == 200


def _names(admin: httpx.Client) -> set[str]:
    answer = admin.get(TOKENS, params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    return {token["name"] for token in answer.json()["results"]}


def test_attack_create_cannot_grant_permissions_the_caller_lacks(
    server: InProcessServer, admin: httpx.Client, client: ClientFactory
) -> None:
    manager = _as(client, server, create(admin, "escalate-create", MANAGER))
    name = f"wider-{uuid.uuid4().hex[:8]}"
    answer = manager.post(TOKENS, json=spec(name, [*MANAGER, "UserModify", "AlertRead"]))
    message = refused(answer, 403)
    assert "UserModify" in message and "AlertRead" in message
    assert name not in _names(admin), "a refused create left a token behind"
    assert manager.post(TOKENS, json=spec(name, [READ])).status_code == 200  # a subset is fine


def test_attack_update_cannot_grant_permissions_the_caller_lacks(
    server: InProcessServer, admin: httpx.Client, client: ClientFactory
) -> None:
    manager_token = create(admin, "escalate-update", MANAGER)
    manager = _as(client, server, manager_token)
    narrow = create(manager, "narrow", [READ])
    for path, target in ((f"{TOKENS}/{narrow['id']}", narrow), (SELF, manager_token)):
        answer = manager.post(path, json=spec("wider", [*MANAGER, "UserModify"]))
        assert "UserModify" in refused(answer, 403)
        _unchanged(admin, target)


def test_attack_self_update_needs_modify(
    server: InProcessServer, admin: httpx.Client, client: ClientFactory
) -> None:
    reader_token = create(admin, "reader", [READ])
    reader = _as(client, server, reader_token)
    assert MODIFY in refused(reader.post(SELF, json=spec("renamed", [READ])), 403)
    _unchanged(admin, reader_token)


@pytest.mark.parametrize("target_exists", [True, False], ids=["existing", "missing"])
def test_attack_narrow_token_cannot_read_or_list_others(
    server: InProcessServer, admin: httpx.Client, client: ClientFactory, target_exists: bool
) -> None:
    """403 whether or not the id exists: no probing for ids without the permission."""
    other = create(admin, "other", [READ])["id"] if target_exists else str(uuid.uuid4())
    narrow = _as(client, server, create(admin, "alerts-only", ["AlertRead", MODIFY]))
    assert READ in refused(narrow.get(TOKENS), 403)
    assert READ in refused(narrow.get(f"{TOKENS}/{other}"), 403)
    assert refused(narrow.get("/audit-events"), 403)


@pytest.mark.parametrize("target_exists", [True, False], ids=["existing", "missing"])
def test_attack_narrow_token_cannot_change_others(
    server: InProcessServer, admin: httpx.Client, client: ClientFactory, target_exists: bool
) -> None:
    """Without Modify: update, rotate and delete of another token are 403, nothing changes."""
    victim = create(admin, "victim", [READ])
    target = victim["id"] if target_exists else str(uuid.uuid4())
    narrow = _as(client, server, create(admin, "read-only", [READ]))
    answers = [
        narrow.post(f"{TOKENS}/{target}", json=spec("pwned", [])),
        narrow.post(f"{TOKENS}/{target}/rotate"),
        narrow.delete(f"{TOKENS}/{target}"),
    ]
    for answer in answers:
        assert MODIFY in refused(answer, 403)
    _unchanged(admin, victim)


def test_attack_manager_cannot_rotate_or_update_a_token_holding_more(
    server: InProcessServer, admin: httpx.Client, client: ClientFactory
) -> None:
    """Rotating a broader token would hand its new value to a narrower caller."""
    broad = create(admin, "broad", [*MANAGER, "UserModify"])
    manager = _as(client, server, create(admin, "manager", MANAGER))
    wider = "cannot change an API token whose permissions are wider than this API token's"
    rotation = manager.post(f"{TOKENS}/{broad['id']}/rotate")
    assert refused(rotation, 403) == wider  # and it does not list the broad token's
    assert "value" not in rotation.json()
    update = manager.post(f"{TOKENS}/{broad['id']}", json=spec("renamed", [READ]))
    assert refused(update, 403) == wider
    _unchanged(admin, broad)
    with_grace = manager.post(f"{TOKENS}/{broad['id']}/rotate", params={"gracePeriodSeconds": 60})
    assert refused(with_grace, 403)
    _unchanged(admin, broad)


def test_attack_manager_cannot_rotate_the_admin_but_may_delete_a_leaked_one(
    server: InProcessServer, admin: httpx.Client, client: ClientFactory
) -> None:
    """The janitor rule: Modify without the target's permissions deletes, never rotates."""
    leaked_admin = create(admin, "leaked-admin", [*MANAGER, "UserModify", "AlertRead"])
    janitor = _as(client, server, create(admin, "janitor", [MODIFY]))
    assert refused(janitor.post(f"{TOKENS}/{leaked_admin['id']}/rotate"), 403)
    assert janitor.delete(f"{TOKENS}/{leaked_admin['id']}").status_code == 204
    gone = admin.get(SELF, headers=key(leaked_admin["value"]))
    assert refused(gone, 401) == INVALID_KEY
    assert refused(admin.get(f"{TOKENS}/{leaked_admin['id']}"), 404)


def test_attack_token_without_permissions_may_only_read_rotate_and_delete_itself(
    server: InProcessServer, admin: httpx.Client, client: ClientFactory
) -> None:
    bare_token = create(admin, "bare", [])
    bare = _as(client, server, bare_token)
    assert bare.get(SELF).json()["permissions"] == []
    assert bare.get(f"{TOKENS}/{bare_token['id']}").status_code == 200  # its own id = self
    assert refused(bare.post(TOKENS, json=spec("child", [])), 403)
    assert refused(bare.get(TOKENS), 403)
    rotated = bare.post(f"{SELF}/rotate")
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["permissions"] == []
    renewed = client(server, rotated.json()["value"])
    assert refused(bare.get(SELF), 401) == INVALID_KEY
    assert renewed.delete(SELF).status_code == 204
    assert refused(renewed.get(SELF), 401) == INVALID_KEY
