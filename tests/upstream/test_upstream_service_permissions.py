"""``servicePermissions``: the operator's extra names in a field of their own (issue 13).

``permissions`` holds upstream names only, in every answer and every request body; the
extra names are written and shown in ``servicePermissions``, under the same no-escalation
rule, and ``/verify`` grants on both.
"""

from __future__ import annotations

from typing import Any

import httpx
from upstream_support import EXTRA, InProcess, running

from apitokens.client import AsyncClient
from apitokens.domain.permissions import UPSTREAM_PERMISSIONS

READ = "OrganizationAPITokenRead"
MODIFY = "OrganizationAPITokenModify"
TOKEN_FIELDS = {
    "id",
    "name",
    "permissions",
    "servicePermissions",
    "allowedCIDRBlocks",
    "createdAt",
    "createdBy",
    "updatedAt",
    "updatedBy",
    "rotatedAt",
    "lastUsedAt",
    "lastUsedIPs",
    "expiresAt",
}


async def create(
    client: httpx.AsyncClient, name: str, permissions: list[str], **fields: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api-tokens", json={"name": name, "permissions": permissions, **fields}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored(server: InProcess, token_id: str) -> dict[str, Any]:
    async with server.http(server.admin) as admin:
        response = await admin.get(f"/api-tokens/{token_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_every_token_answer_has_both_fields(url: str) -> None:
    async with running(url) as server, server.http(server.admin) as admin:
        me = (await admin.get("/api-tokens/self")).json()
        assert me["permissions"] == list(UPSTREAM_PERMISSIONS)
        assert me["servicePermissions"] == []
        made = await create(admin, "ci", [READ])
        assert set(made) == {*TOKEN_FIELDS, "value"}
        assert (made["permissions"], made["servicePermissions"]) == ([READ], [])
        answers = [
            (await admin.get(f"/api-tokens/{made['id']}")).json(),
            (await admin.post(f"/api-tokens/{made['id']}", json=_body("ci", [READ]))).json(),
            (await admin.post(f"/api-tokens/{made['id']}/rotate")).json(),
            *(await admin.get("/api-tokens")).json()["results"],
        ]
        for answer in answers:
            assert answer["servicePermissions"] == []
            assert set(answer) - {"value"} == TOKEN_FIELDS


def _body(name: str, permissions: list[str], **fields: Any) -> dict[str, Any]:
    return {"name": name, "permissions": permissions, **fields}


async def test_extra_names_are_written_and_shown_in_their_own_field(url: str) -> None:
    async with running(url, EXTRA) as server, server.http(server.admin) as admin:
        me = (await admin.get("/api-tokens/self")).json()
        assert me["permissions"] == list(UPSTREAM_PERMISSIONS)
        assert me["servicePermissions"] == list(EXTRA)

        made = await create(
            admin,
            "reporter",
            [READ],
            servicePermissions=["billing.export", "reports:read", "reports:read"],
        )
        assert made["permissions"] == [READ]
        assert made["servicePermissions"] == ["reports:read", "billing.export"]  # catalog order
        listed = (await admin.get("/api-tokens")).json()["results"]
        assert [(t["permissions"], t["servicePermissions"]) for t in listed] == [
            ([READ], ["reports:read", "billing.export"]),
            (list(UPSTREAM_PERMISSIONS), list(EXTRA)),
        ]

        # An upstream client's update (no servicePermissions) keeps them; so does null.
        path = f"/api-tokens/{made['id']}"
        kept = await admin.post(path, json=_body("renamed", [READ, "AlertRead"]))
        assert kept.status_code == 200
        assert kept.json()["permissions"] == ["AlertRead", READ]
        assert kept.json()["servicePermissions"] == ["reports:read", "billing.export"]
        kept = await admin.post(path, json=_body("renamed", [READ], servicePermissions=None))
        assert kept.json()["servicePermissions"] == ["reports:read", "billing.export"]
        # Given, it replaces them; [] removes them.
        replaced = await admin.post(
            path, json=_body("renamed", [READ], servicePermissions=["reports:write"])
        )
        assert replaced.json()["servicePermissions"] == ["reports:write"]
        cleared = await admin.post(path, json=_body("renamed", [READ], servicePermissions=[]))
        assert cleared.json()["servicePermissions"] == []
        assert (await stored(server, made["id"]))["servicePermissions"] == []


async def test_each_field_takes_only_its_own_names(url: str) -> None:
    async with running(url, EXTRA) as server, server.http(server.admin) as admin:
        made = await create(admin, "ci", [READ], servicePermissions=["reports:read"])
        before = await stored(server, made["id"])
        path = f"/api-tokens/{made['id']}"
        cases = [
            (
                _body("x", [READ, "reports:write"]),
                "permissions: reports:write: not an upstream permission; send the "
                "permissions of other services in servicePermissions",
            ),
            (
                _body("x", [READ], servicePermissions=["AlertRead", "reports:read"]),
                "servicePermissions: AlertRead: an upstream permission; send it in permissions",
            ),
            (
                _body("x", [READ], servicePermissions=["reports:delete"]),
                "servicePermissions: unknown permission(s) reports:delete; accepted names "
                "are: reports:read, reports:write, billing.export",
            ),
            (
                _body("x", [READ, "PolicyRaed"]),
                "permissions: unknown permission(s) PolicyRaed; accepted names are: "
                + ", ".join(UPSTREAM_PERMISSIONS),
            ),
            (
                _body("x", [READ], servicePermissions="reports:read"),
                "servicePermissions: input should be a valid list",
            ),
            (
                _body("x", [READ], servicePermission=["reports:read"]),
                "servicePermission: unknown field (accepted fields: name, permissions, "
                "servicePermissions, allowedCIDRBlocks, expiresAt)",
            ),
        ]
        for body, message in cases:
            for target in ("/api-tokens", path):
                response = await admin.post(target, json=body)
                assert response.status_code == 400, (target, body, response.text)
                assert response.json() == {"message": message, "code": "bad_request"}
        assert await stored(server, made["id"]) == before
        assert len((await admin.get("/api-tokens")).json()["results"]) == 2


async def test_without_extra_names_service_permissions_must_be_empty(url: str) -> None:
    async with running(url) as server, server.http(server.admin) as admin:
        refused = await admin.post(
            "/api-tokens", json=_body("x", [READ], servicePermissions=["reports:read"])
        )
        assert refused.status_code == 400
        assert refused.json()["message"] == (
            "servicePermissions: unknown permission(s) reports:read; this server defines "
            "none (APITOKENS_EXTRA_PERMISSIONS)"
        )
        made = await create(admin, "ci", [READ], servicePermissions=[])
        assert made["servicePermissions"] == []


async def test_no_escalation_through_service_permissions(url: str) -> None:
    async with running(url, EXTRA) as server, server.http(server.admin) as admin:
        manager = await create(
            admin, "manager", [READ, MODIFY], servicePermissions=["reports:read"]
        )
        wide = await create(admin, "wide", [READ], servicePermissions=["reports:write"])
        async with server.http(manager["value"]) as client:
            refused = await client.post(
                "/api-tokens",
                json=_body("child", [READ], servicePermissions=["reports:read", "reports:write"]),
            )
            assert refused.status_code == 403
            assert refused.json()["message"] == (
                "cannot grant permissions this API token does not hold: reports:write"
            )
            child = await create(client, "child", [READ], servicePermissions=["reports:read"])
            assert child["servicePermissions"] == ["reports:read"]
            # Nor by update, of itself or of a token it made.
            for target in ("self", child["id"]):
                grown = await client.post(
                    f"/api-tokens/{target}",
                    json=_body("grown", [READ], servicePermissions=["reports:write"]),
                )
                assert grown.status_code == 403
                assert grown.json()["message"] == (
                    "cannot grant permissions this API token does not hold: reports:write"
                )
            # A token holding a service permission the caller lacks is wider: not changeable,
            # even by an update that would leave its servicePermissions out.
            before = await stored(server, wide["id"])
            for body in (
                _body("narrowed", [READ]),
                _body("narrowed", [READ], servicePermissions=[]),
            ):
                untouched = await client.post(f"/api-tokens/{wide['id']}", json=body)
                assert untouched.status_code == 403
                assert untouched.json()["message"] == (
                    "cannot change an API token whose permissions are wider than this API token's"
                )
            rotate = await client.post(f"/api-tokens/{wide['id']}/rotate")
            assert rotate.status_code == 403
            assert await stored(server, wide["id"]) == before


async def test_verify_grants_on_both_fields(url: str) -> None:
    async with running(url, EXTRA) as server, server.http(server.admin) as admin:
        made = await create(admin, "reporter", ["AlertRead"], servicePermissions=["reports:read"])
        async with server.http(made["value"]) as client:
            granted = await client.get("/verify", params={"permission": "AlertRead,reports:read"})
            assert granted.status_code == 204
            assert granted.headers["X-Token-Permissions"] == "AlertRead,reports:read"
            assert (
                await client.get("/verify", params={"permission": "reports:read"})
            ).status_code == 204
            refused = await client.get("/verify", params={"permission": "reports:write"})
            assert refused.status_code == 403
            assert refused.json()["message"] == (
                "this API token lacks the permission(s) required here: reports:write"
            )
        # Taking the service permission away takes the grant away at once.
        await admin.post(
            f"/api-tokens/{made['id']}",
            json=_body("reporter", ["AlertRead"], servicePermissions=[]),
        )
        async with server.http(made["value"]) as client:
            gone = await client.get("/verify", params={"permission": "reports:read"})
            assert gone.status_code == 403


async def test_the_document_declares_the_field(url: str) -> None:
    async with running(url, EXTRA) as server, server.http() as anonymous:
        document = (await anonymous.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    modify = schemas["ModifyAPIToken"]["properties"]
    assert modify["permissions"]["items"]["enum"] == list(UPSTREAM_PERMISSIONS)
    service = modify["servicePermissions"]
    assert service["anyOf"][0] == {
        "type": "array",
        "items": {"type": "string", "enum": list(EXTRA)},
    }
    assert service["anyOf"][1] == {"type": "null"}
    assert "servicePermissions" not in schemas["ModifyAPIToken"].get("required", [])
    assert "servicePermissions" in schemas["APIToken"]["required"]  # always present
    token = schemas["APIToken"]["properties"]["servicePermissions"]
    assert token["type"] == "array"
    assert token["items"] == {"type": "string"}

    async with running(url) as server, server.http() as anonymous:
        document = (await anonymous.get("/openapi.json")).json()
    service = document["components"]["schemas"]["ModifyAPIToken"]["properties"][
        "servicePermissions"
    ]
    assert service["anyOf"][0] == {"type": "array", "items": {"type": "string"}, "maxItems": 0}


async def test_the_python_client_writes_and_reads_service_permissions(url: str) -> None:
    async with running(url, EXTRA) as server:
        transport = httpx.ASGITransport(app=server.app)
        async with AsyncClient("http://apitokens.test", server.admin, transport=transport) as api:
            made = await api.create("ci", [READ], service_permissions=["reports:read"])
            assert (made.permissions, made.service_permissions) == ((READ,), ("reports:read",))
            assert made.to_dict()["servicePermissions"] == ["reports:read"]
            renamed = await api.update(made.id, name="ci-2")
            assert renamed.service_permissions == ("reports:read",)
            replaced = await api.update(made.id, service_permissions=["reports:write"])
            assert (replaced.permissions, replaced.service_permissions) == (
                (READ,),
                ("reports:write",),
            )
            cleared = await api.update(made.id, service_permissions=[])
            assert cleared.service_permissions == ()
            assert (await api.get(made.id)).service_permissions == ()
