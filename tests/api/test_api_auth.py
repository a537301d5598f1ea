"""Authentication (401) and authorization (403): permissions, `self`, no escalation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from api_support import INVALID_KEY, MANAGER, MODIFY, READ, TOKENS, body, create, error

from apitokens.domain.values import ValueCodec
from support.inprocess import InProcessServer
from support.protocols import ApiClientFactory

LACKS_READ = "this API token lacks the OrganizationAPITokenRead permission"
LACKS_MODIFY = "this API token lacks the OrganizationAPITokenModify permission"


@pytest.fixture
def bare(server: InProcessServer, admin: httpx.Client, api: ApiClientFactory) -> httpx.Client:
    """A client whose token holds no permission at all."""
    return api(server, create(admin, "bare")["value"])


@pytest.fixture
def reader(server: InProcessServer, admin: httpx.Client, api: ApiClientFactory) -> httpx.Client:
    return api(server, create(admin, "reader", [READ])["value"])


@pytest.fixture
def manager(server: InProcessServer, admin: httpx.Client, api: ApiClientFactory) -> httpx.Client:
    """A client whose token may manage tokens but holds no other permission."""
    return api(server, create(admin, "manager", MANAGER)["value"])


@pytest.fixture
def broad(admin: httpx.Client) -> dict[str, Any]:
    """A token holding more than ``manager``."""
    return create(admin, "broad", [*MANAGER, "AlertRead", "UserRead"])


# -- 401 ---------------------------------------------------------------------------------


def _every_operation(client: httpx.Client, token_id: str) -> list[httpx.Response]:
    path = f"{TOKENS}/{token_id}"
    return [
        client.get(TOKENS),
        client.post(TOKENS, json=body("x")),
        client.get(path),
        client.post(path, json=body("x")),
        client.delete(path),
        client.post(f"{path}/rotate"),
    ]


def test_missing_key_is_401_on_every_operation(
    server: InProcessServer, api: ApiClientFactory
) -> None:
    for response in _every_operation(api(server), "self"):
        assert error(response, 401) == INVALID_KEY


def test_401_names_the_expected_header(server: InProcessServer, api: ApiClientFactory) -> None:
    response = api(server).get(TOKENS)
    assert response.headers["www-authenticate"] == 'APIKey header="X-API-Key"'


@pytest.mark.parametrize("key", ["", "nope", "Bearer apitk_x", "apitk_" + "0" * 49])
def test_malformed_key_is_401(server: InProcessServer, api: ApiClientFactory, key: str) -> None:
    assert error(api(server, key).get(f"{TOKENS}/self"), 401) == INVALID_KEY


def test_unknown_key_is_401_on_every_operation(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    token_id = create(admin, "target")["id"]
    unknown = api(server, ValueCodec("apitk").issue().value)
    for response in _every_operation(unknown, token_id):
        assert error(response, 401) == INVALID_KEY
    assert admin.get(f"{TOKENS}/{token_id}").json()["name"] == "target"


def test_unknown_revoked_and_rotated_out_keys_look_the_same(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    revoked = create(admin, "revoked", [READ])
    admin.delete(f"{TOKENS}/{revoked['id']}")
    rotated = create(admin, "rotated", [READ])
    admin.post(f"{TOKENS}/{rotated['id']}/rotate")
    answers = [
        api(server, value).get(TOKENS)
        for value in (ValueCodec("apitk").issue().value, revoked["value"], rotated["value"])
    ]
    assert {response.status_code for response in answers} == {401}
    assert {response.content for response in answers} == {
        b'{"message":"invalid or missing API key","code":"unauthorized"}'
    }


def test_key_is_case_sensitive(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    value = create(admin, "ci", [READ])["value"]
    assert error(api(server, value.swapcase()).get(TOKENS), 401) == INVALID_KEY


# -- permissions -------------------------------------------------------------------------


def test_reader_may_list_and_get(reader: httpx.Client, admin: httpx.Client) -> None:
    other = create(admin, "other")
    assert reader.get(TOKENS).status_code == 200
    assert reader.get(f"{TOKENS}/{other['id']}").json()["name"] == "other"


def test_reader_may_not_write(reader: httpx.Client, admin: httpx.Client) -> None:
    other = create(admin, "other")
    path = f"{TOKENS}/{other['id']}"
    assert error(reader.post(TOKENS, json=body("x")), 403) == LACKS_MODIFY
    assert error(reader.post(path, json=body("x")), 403) == LACKS_MODIFY
    assert error(reader.post(f"{path}/rotate"), 403) == LACKS_MODIFY
    assert error(reader.delete(path), 403) == LACKS_MODIFY
    assert admin.get(path).json()["name"] == "other"


def test_modify_without_read_may_not_list_or_get(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    writer = api(server, create(admin, "writer", [MODIFY])["value"])
    other = create(admin, "other")
    assert error(writer.get(TOKENS), 403) == LACKS_READ
    assert error(writer.get(f"{TOKENS}/{other['id']}"), 403) == LACKS_READ
    assert writer.delete(f"{TOKENS}/{other['id']}").status_code == 204


# -- self --------------------------------------------------------------------------------


def test_bare_token_may_get_itself(bare: httpx.Client) -> None:
    response = bare.get(f"{TOKENS}/self")
    assert response.status_code == 200
    assert response.json()["name"] == "bare"
    assert response.json()["permissions"] == []


def test_bare_token_may_get_itself_by_id(bare: httpx.Client) -> None:
    token_id = bare.get(f"{TOKENS}/self").json()["id"]
    assert bare.get(f"{TOKENS}/{token_id}").json()["name"] == "bare"


def test_bare_token_may_rotate_itself(
    server: InProcessServer, bare: httpx.Client, api: ApiClientFactory
) -> None:
    response = bare.post(f"{TOKENS}/self/rotate")
    assert response.status_code == 200
    assert error(bare.get(f"{TOKENS}/self"), 401) == INVALID_KEY
    fresh = api(server, response.json()["value"])
    assert fresh.get(f"{TOKENS}/self").json()["rotatedAt"] == response.json()["rotatedAt"]


def test_bare_token_may_delete_itself(bare: httpx.Client, admin: httpx.Client) -> None:
    token_id = bare.get(f"{TOKENS}/self").json()["id"]
    assert bare.delete(f"{TOKENS}/self").status_code == 204
    assert error(bare.get(f"{TOKENS}/self"), 401) == INVALID_KEY
    assert error(admin.get(f"{TOKENS}/{token_id}"), 404)


def test_bare_token_may_rotate_and_delete_itself_by_id(
    server: InProcessServer, bare: httpx.Client, api: ApiClientFactory
) -> None:
    token_id = bare.get(f"{TOKENS}/self").json()["id"]
    rotated = bare.post(f"{TOKENS}/{token_id}/rotate")
    assert rotated.status_code == 200
    fresh = api(server, rotated.json()["value"])
    assert fresh.delete(f"{TOKENS}/{token_id}").status_code == 204
    assert error(fresh.get(f"{TOKENS}/self"), 401) == INVALID_KEY


def test_bare_token_may_not_update_itself(bare: httpx.Client) -> None:
    response = bare.post(f"{TOKENS}/self", json=body("renamed"))
    assert error(response, 403) == LACKS_MODIFY
    assert bare.get(f"{TOKENS}/self").json()["name"] == "bare"


def test_bare_token_may_not_list(bare: httpx.Client) -> None:
    assert error(bare.get(TOKENS), 403) == LACKS_READ


def test_bare_token_may_not_touch_another_token(bare: httpx.Client, admin: httpx.Client) -> None:
    other = create(admin, "other")
    path = f"{TOKENS}/{other['id']}"
    assert error(bare.get(path), 403) == LACKS_READ
    assert error(bare.post(f"{path}/rotate"), 403) == LACKS_MODIFY
    assert error(bare.delete(path), 403) == LACKS_MODIFY
    assert error(bare.post(TOKENS, json=body("x")), 403) == LACKS_MODIFY


def test_manager_may_update_itself_within_its_permissions(manager: httpx.Client) -> None:
    response = manager.post(f"{TOKENS}/self", json=body("renamed", [MODIFY]))
    assert response.status_code == 200
    assert response.json()["permissions"] == [MODIFY]


# -- no privilege escalation -------------------------------------------------------------


def test_create_with_permissions_the_caller_lacks_is_refused(manager: httpx.Client) -> None:
    response = manager.post(TOKENS, json=body("x", [READ, "AlertRead", "UserModify"]))
    assert error(response, 403) == (
        "cannot grant permissions this API token does not hold: AlertRead, UserModify"
    )


def test_create_within_the_caller_permissions_is_allowed(manager: httpx.Client) -> None:
    assert create(manager, "child", [READ])["permissions"] == [READ]


def test_update_adding_permissions_the_caller_lacks_is_refused(
    manager: httpx.Client, admin: httpx.Client
) -> None:
    narrow = create(admin, "narrow", [READ])
    response = manager.post(f"{TOKENS}/{narrow['id']}", json=body("narrow", [READ, "AlertRead"]))
    assert (
        error(response, 403) == "cannot grant permissions this API token does not hold: AlertRead"
    )
    assert admin.get(f"{TOKENS}/{narrow['id']}").json()["permissions"] == [READ]


def test_self_update_adding_permissions_is_refused(manager: httpx.Client) -> None:
    response = manager.post(f"{TOKENS}/self", json=body("manager", [*MANAGER, "UserRead"]))
    assert error(response, 403) == "cannot grant permissions this API token does not hold: UserRead"
    assert manager.get(f"{TOKENS}/self").json()["permissions"] == list(MANAGER)


def test_narrower_token_may_not_rotate_a_broader_one(
    manager: httpx.Client, admin: httpx.Client, broad: dict[str, Any]
) -> None:
    rotated_at = admin.get(f"{TOKENS}/{broad['id']}").json()["rotatedAt"]
    response = manager.post(f"{TOKENS}/{broad['id']}/rotate")
    assert error(response, 403) == (
        "cannot change an API token whose permissions are wider than this API token's"
    )
    assert admin.get(f"{TOKENS}/{broad['id']}").json()["rotatedAt"] == rotated_at


def test_broader_token_keeps_working_after_a_refused_rotation(
    server: InProcessServer, manager: httpx.Client, broad: dict[str, Any], api: ApiClientFactory
) -> None:
    manager.post(f"{TOKENS}/{broad['id']}/rotate")
    assert api(server, broad["value"]).get(f"{TOKENS}/self").status_code == 200


def test_narrower_token_may_not_update_a_broader_one(
    manager: httpx.Client, admin: httpx.Client, broad: dict[str, Any]
) -> None:
    response = manager.post(f"{TOKENS}/{broad['id']}", json=body("tamed", [READ]))
    assert error(response, 403) == (
        "cannot change an API token whose permissions are wider than this API token's"
    )
    assert admin.get(f"{TOKENS}/{broad['id']}").json()["name"] == "broad"


def test_narrower_token_may_delete_a_broader_one(
    manager: httpx.Client, admin: httpx.Client, broad: dict[str, Any]
) -> None:
    assert manager.delete(f"{TOKENS}/{broad['id']}").status_code == 204
    assert error(admin.get(f"{TOKENS}/{broad['id']}"), 404)


def test_manager_may_rotate_a_token_it_covers(manager: httpx.Client, admin: httpx.Client) -> None:
    narrow = create(admin, "narrow", [READ])
    response = manager.post(f"{TOKENS}/{narrow['id']}/rotate")
    assert response.status_code == 200
    assert response.json()["updatedBy"] == {
        "id": manager.get(f"{TOKENS}/self").json()["id"],
        "type": "api-token",
    }
