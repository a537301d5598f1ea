"""The six operations at the upstream paths, with the exact fields of the contract."""

from __future__ import annotations

import httpx
from api_support import MODIFY, READ, TIME_FORMAT, TOKEN_FIELDS, TOKENS, create, error

from support.inprocess import InProcessServer
from support.protocols import ApiClientFactory

NOT_FOUND = "no API token with that id"


def test_create_returns_the_token_with_its_value(admin: httpx.Client) -> None:
    response = admin.post(
        TOKENS,
        json={"name": "ci", "permissions": [READ], "allowedCIDRBlocks": ["10.0.0.0/8"]},
    )
    assert response.status_code == 200
    token = response.json()
    assert set(token) >= TOKEN_FIELDS | {"value"}
    assert token["name"] == "ci"
    assert token["permissions"] == [READ]
    assert token["allowedCIDRBlocks"] == ["10.0.0.0/8"]
    assert token["value"].startswith("apitk_")
    assert token["rotatedAt"] is None
    assert token["lastUsedAt"] is None
    assert token["expiresAt"] is None


def test_create_response_is_not_cached(admin: httpx.Client) -> None:
    response = admin.post(TOKENS, json={"name": "ci", "permissions": []})
    assert response.headers["cache-control"] == "no-store"


def test_created_token_works_at_once(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    token = create(admin, "ci", [READ])
    response = api(server, token["value"]).get(TOKENS)
    assert response.status_code == 200


def test_get_returns_the_token_without_its_value(admin: httpx.Client) -> None:
    created = create(admin, "ci", [READ], allowedCIDRBlocks=["192.0.2.0/24"])
    response = admin.get(f"{TOKENS}/{created['id']}")
    assert response.status_code == 200
    token = response.json()
    assert "value" not in token
    assert set(token) >= TOKEN_FIELDS
    created.pop("value")
    assert token == created


def test_get_self_returns_the_calling_token(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    created = create(admin, "ci")
    response = api(server, created["value"]).get(f"{TOKENS}/self")
    assert response.status_code == 200
    token = response.json()
    assert token["id"] == created["id"]
    assert token["name"] == "ci"
    assert "value" not in token


def test_list_returns_tokens_newest_first_without_values(admin: httpx.Client) -> None:
    created = create(admin, "ci")
    response = admin.get(TOKENS, params={"limit": 1000})
    assert response.status_code == 200
    page = response.json()
    assert set(page) <= {"results", "next"}
    assert page.get("next") is None
    assert page["results"][0]["id"] == created["id"]
    assert page["results"][-1]["name"] == "admin"
    assert all("value" not in token for token in page["results"])
    assert all(set(token) >= TOKEN_FIELDS for token in page["results"])


def test_update_replaces_name_and_permissions(admin: httpx.Client) -> None:
    created = create(admin, "ci", [READ])
    response = admin.post(
        f"{TOKENS}/{created['id']}", json={"name": "deploy", "permissions": [MODIFY, "AlertRead"]}
    )
    assert response.status_code == 200
    token = response.json()
    assert token["id"] == created["id"]
    assert token["name"] == "deploy"
    assert token["permissions"] == ["AlertRead", MODIFY]
    assert "value" not in token
    assert admin.get(f"{TOKENS}/{created['id']}").json() == token


def test_update_is_post_not_put_or_patch(admin: httpx.Client) -> None:
    created = create(admin, "ci")
    for method in ("PUT", "PATCH"):
        response = admin.request(method, f"{TOKENS}/{created['id']}", json={"name": "x"})
        assert error(response, 405)
    assert admin.get(f"{TOKENS}/{created['id']}").json()["name"] == "ci"


def test_delete_answers_204_with_an_empty_body(admin: httpx.Client) -> None:
    created = create(admin, "ci")
    response = admin.delete(f"{TOKENS}/{created['id']}")
    assert response.status_code == 204
    assert response.content == b""


def test_deleted_token_vanishes_from_get_and_list(admin: httpx.Client) -> None:
    created = create(admin, "ci")
    admin.delete(f"{TOKENS}/{created['id']}")
    assert error(admin.get(f"{TOKENS}/{created['id']}"), 404) == NOT_FOUND
    listed = admin.get(TOKENS, params={"limit": 1000}).json()["results"]
    assert created["id"] not in {token["id"] for token in listed}


def test_deleting_twice_is_404(admin: httpx.Client) -> None:
    created = create(admin, "ci")
    admin.delete(f"{TOKENS}/{created['id']}")
    assert error(admin.delete(f"{TOKENS}/{created['id']}"), 404) == NOT_FOUND


def test_rotate_returns_a_new_value_and_keeps_the_rest(admin: httpx.Client) -> None:
    created = create(admin, "ci", [READ], allowedCIDRBlocks=["127.0.0.1"])
    response = admin.post(f"{TOKENS}/{created['id']}/rotate")
    assert response.status_code == 200
    rotated = response.json()
    assert rotated["value"].startswith("apitk_")
    assert rotated["value"] != created["value"]
    for field in ("id", "name", "permissions", "allowedCIDRBlocks", "createdAt", "createdBy"):
        assert rotated[field] == created[field]
    assert TIME_FORMAT.match(rotated["rotatedAt"])
    assert rotated["rotatedAt"] >= created["createdAt"]
    assert response.headers["cache-control"] == "no-store"


def test_rotated_value_is_not_shown_by_get(admin: httpx.Client) -> None:
    created = create(admin, "ci")
    rotated = admin.post(f"{TOKENS}/{created['id']}/rotate").json()
    token = admin.get(f"{TOKENS}/{created['id']}").json()
    assert "value" not in token
    assert token["rotatedAt"] == rotated["rotatedAt"]


def test_rotation_invalidates_the_old_value_at_once(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    created = create(admin, "ci", [READ])
    old = api(server, created["value"])
    assert old.get(TOKENS).status_code == 200  # now cached in memory
    rotated = admin.post(f"{TOKENS}/{created['id']}/rotate").json()
    assert error(old.get(TOKENS), 401)
    assert api(server, rotated["value"]).get(TOKENS).status_code == 200


def test_rotate_self_returns_a_new_value(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    created = create(admin, "ci")
    response = api(server, created["value"]).post(f"{TOKENS}/self/rotate")
    assert response.status_code == 200
    rotated = response.json()
    assert rotated["id"] == created["id"]
    assert api(server, rotated["value"]).get(f"{TOKENS}/self").json()["id"] == created["id"]


def test_deleted_token_stops_authenticating_at_once(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    created = create(admin, "ci", [READ])
    client = api(server, created["value"])
    assert client.get(TOKENS).status_code == 200  # now cached in memory
    admin.delete(f"{TOKENS}/{created['id']}")
    assert error(client.get(TOKENS), 401)


def test_delete_self(server: InProcessServer, admin: httpx.Client, api: ApiClientFactory) -> None:
    created = create(admin, "ci")
    client = api(server, created["value"])
    assert client.delete(f"{TOKENS}/self").status_code == 204
    assert error(client.get(f"{TOKENS}/self"), 401)
    assert error(admin.get(f"{TOKENS}/{created['id']}"), 404) == NOT_FOUND


def test_unknown_id_is_404_on_every_id_operation(admin: httpx.Client) -> None:
    path = f"{TOKENS}/00000000-0000-4000-8000-000000000000"
    assert error(admin.get(path), 404) == NOT_FOUND
    assert error(admin.post(path, json={"name": "x", "permissions": []}), 404) == NOT_FOUND
    assert error(admin.delete(path), 404) == NOT_FOUND
    assert error(admin.post(f"{path}/rotate"), 404) == NOT_FOUND


def test_malformed_ids_are_404(admin: httpx.Client) -> None:
    for token_id in ("nope", "x" * 500, "%00", "%27%3B--", "SELF", "self%20", "%C3%A9"):
        path = f"{TOKENS}/{token_id}"
        assert error(admin.get(path), 404) == NOT_FOUND, token_id
        assert error(admin.delete(path), 404) == NOT_FOUND, token_id
        assert error(admin.post(f"{path}/rotate"), 404) == NOT_FOUND, token_id
        update = admin.post(path, json={"name": "x", "permissions": []})
        assert error(update, 404) == NOT_FOUND, token_id


def test_unknown_route_answers_a_message(admin: httpx.Client) -> None:
    assert error(admin.get("/no-such-route"), 404)


def test_healthz_needs_no_authentication(server: InProcessServer, api: ApiClientFactory) -> None:
    response = api(server).get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_rotation_grace_period_keeps_the_old_value_working(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    created = create(admin, "ci", [READ])
    response = admin.post(f"{TOKENS}/{created['id']}/rotate", params={"gracePeriodSeconds": 600})
    assert response.status_code == 200
    assert api(server, created["value"]).get(TOKENS).status_code == 200
    assert api(server, response.json()["value"]).get(TOKENS).status_code == 200


def test_rotation_without_grace_ends_earlier_grace_periods(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    created = create(admin, "ci", [READ])
    first = admin.post(f"{TOKENS}/{created['id']}/rotate", params={"gracePeriodSeconds": 600})
    second = admin.post(f"{TOKENS}/{created['id']}/rotate").json()
    assert error(api(server, created["value"]).get(TOKENS), 401)
    assert error(api(server, first.json()["value"]).get(TOKENS), 401)
    assert api(server, second["value"]).get(TOKENS).status_code == 200
