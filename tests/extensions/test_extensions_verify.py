"""``/verify`` for reverse proxies: 204 with the token's identity, or 401/403/429/400."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import unquote

import httpx
import pytest
from extension_helpers import (
    INVALID,
    READ,
    create_token,
    key,
    well_formed,
)
from starlette.requests import Request

from apitokens.domain.errors import ValidationFailed
from apitokens.domain.tokens import Actor, Token
from apitokens.http import routes_verify
from apitokens.http.kept import Kept
from support.inprocess import InProcessServer
from support.protocols import ApiClientFactory, AppFactory

SYSTEM = Actor("cli", "system")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def test_a_valid_value_gets_204_with_the_identity_headers(
    ext_server: InProcessServer, api: ApiClientFactory
) -> None:
    anonymous = api(ext_server)
    admin = api(ext_server, ext_server.admin)
    token = create_token(admin, "Zoë's deploy, 100% 🚀", ("reports:read", "AlertRead", READ))
    for method in METHODS:
        response = anonymous.request(method, "/verify", headers=key(token["value"]))
        assert response.status_code == 204, (method, response.text)
        assert response.content == b""
        assert response.headers["X-Token-Id"] == token["id"]
        assert response.headers["X-Token-Permissions"] == f"AlertRead,{READ},reports:read"
        assert response.headers["Cache-Control"] == "no-store"
    name = response.headers["X-Token-Name"]
    assert name.isascii()
    assert name.startswith("Zo%C3%AB's deploy, 100%25 ")
    assert unquote(name) == token["name"]
    plain = create_token(admin, "ci deploy")
    answer = anonymous.get("/verify", headers=key(plain["value"]))
    assert (answer.headers["X-Token-Name"], answer.headers["X-Token-Permissions"]) == (
        "ci deploy",
        "",
    )

    # Authorization: Bearer works too; X-API-Key wins when both are sent.
    bearer = {"Authorization": f"Bearer {plain['value']}"}
    assert anonymous.get("/verify", headers=bearer).headers["X-Token-Id"] == plain["id"]
    both = {**bearer, **key(token["value"])}
    assert anonymous.get("/verify", headers=both).headers["X-Token-Id"] == token["id"]
    basic = {"Authorization": "Basic dXNlcjpwYXNz"}
    assert anonymous.get("/verify", headers=basic).status_code == 401


def test_the_identity_headers_follow_a_change_of_the_token_at_once(
    ext_server: InProcessServer, api: ApiClientFactory
) -> None:
    anonymous = api(ext_server)
    admin = api(ext_server, ext_server.admin)
    token = create_token(admin, "before", ("AlertRead",))
    asked = {"permission": "AlertRead"}

    def identity() -> tuple[int, str | None, str | None]:
        answer = anonymous.get("/verify", params=asked, headers=key(token["value"]))
        return (
            answer.status_code,
            answer.headers.get("X-Token-Name"),
            answer.headers.get("X-Token-Permissions"),
        )

    assert identity() == (204, "before", "AlertRead")
    assert identity() == (204, "before", "AlertRead")  # the same again
    changed = {"name": "after", "permissions": ["AlertRead", READ]}
    assert admin.post(f"/api-tokens/{token['id']}", json=changed).status_code == 200
    assert identity() == (204, "after", f"AlertRead,{READ}")
    narrowed = {"name": "after", "permissions": [READ]}
    assert admin.post(f"/api-tokens/{token['id']}", json=narrowed).status_code == 200
    assert identity()[0] == 403  # the same query, asked again: now refused


def test_refusals(ext_server: InProcessServer, api: ApiClientFactory) -> None:
    anonymous = api(ext_server)
    admin = api(ext_server, ext_server.admin)
    for headers in ({}, key("junk"), key(well_formed("V"))):
        response = anonymous.get("/verify", headers=headers)
        assert (response.status_code, response.json()["message"]) == (401, INVALID)
        assert response.headers["WWW-Authenticate"]
        assert "X-Token-Id" not in response.headers

    narrow = create_token(admin, "narrow", ("AlertRead", "reports:read"))
    value = key(narrow["value"])

    def verify(*params: tuple[str, str]) -> httpx.Response:
        return anonymous.get("/verify", headers=value, params=httpx.QueryParams(list(params)))

    assert verify(("permission", "AlertRead")).status_code == 204
    assert verify(("permission", "AlertRead,reports:read")).status_code == 204
    assert verify(("permission", "AlertRead"), ("permission", "reports:read")).status_code == 204
    missing = verify(("permission", "AlertRead,reports:write,UserRead"))
    assert missing.status_code == 403
    assert "UserRead, reports:write" in missing.json()["message"]
    header = {**value, "X-Required-Permission": "reports:write"}
    assert anonymous.get("/verify", headers=header).status_code == 403
    # Query and header requirements add up: all are needed.
    both = anonymous.get(
        "/verify",
        headers={**value, "X-Required-Permission": "reports:read"},
        params={"permission": "UserRead"},
    )
    assert both.status_code == 403
    unknown = verify(("permission", "reports:delete"))
    assert unknown.status_code == 400
    assert "reports:delete" in unknown.json()["message"]

    spec = anonymous.get("/openapi.json").json()
    # every method a proxy forwards is served and declared, each its own operation
    assert set(spec["paths"]["/verify"]) == {
        "get",
        "head",
        "post",
        "put",
        "patch",
        "delete",
        "options",
    }
    assert {"204", "400", "401", "403", "429"} <= set(spec["paths"]["/verify"]["get"]["responses"])


def test_the_client_address_follows_the_trusted_proxy_rule(
    ext_server: InProcessServer, api: ApiClientFactory
) -> None:
    anonymous = api(ext_server)
    admin = api(ext_server, ext_server.admin)
    fenced = create_token(admin, "fenced", allowedCIDRBlocks=["10.20.0.0/16"])
    inside = {**key(fenced["value"]), "X-Forwarded-For": "10.20.3.4"}
    outside = {**key(fenced["value"]), "X-Forwarded-For": "10.21.3.4"}
    assert anonymous.get("/verify", headers=inside).status_code == 204
    refused = anonymous.get("/verify", headers=outside)
    assert refused.status_code == 403
    assert refused.json()["message"] == (
        "this API key may not be used from this address (see its allowedCIDRBlocks)"
    )
    # X-Real-IP is not believed, even from a trusted proxy: one header, one rule.
    real_ip = {**key(fenced["value"]), "X-Real-IP": "10.20.3.4"}
    assert anonymous.get("/verify", headers=real_ip).status_code == 403
    # A successful verification counts as a use of the token.
    assert admin.get(f"/api-tokens/{fenced['id']}").json()["lastUsedIPs"] == ["10.20.3.4"]
    ext_server.flush()
    assert admin.get(f"/api-tokens/{fenced['id']}").json()["lastUsedIPs"] == ["10.20.3.4"]


def test_untrusted_peers_and_the_failure_limit(
    ext_server_factory: AppFactory, api: ApiClientFactory
) -> None:
    server = ext_server_factory(args=(), env={"APITOKENS_AUTH_FAILURE_LIMIT": "3"})
    admin = api(server, server.admin)
    fenced = create_token(admin, "fenced", allowedCIDRBlocks=["10.20.0.0/16"])
    # Without trusted proxies, X-Forwarded-For is ignored: the TCP peer is the client.
    spoofed = {**key(fenced["value"]), "X-Forwarded-For": "10.20.3.4"}
    assert api(server).get("/verify", headers=spoofed).status_code == 403

    # Failed verifications count against the peer's address like any failed authentication.
    with server.client(peer="127.0.0.3") as peer:
        codes = [peer.get("/verify", headers=key("junk")).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        limited = peer.get("/verify", headers=key(server.admin))
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1
    with server.client(peer="127.0.0.4") as other:
        assert other.get("/verify", headers=key(server.admin)).status_code == 204


def _asked(query: bytes, *headers: tuple[bytes, bytes]) -> list[str]:
    scope = {"type": "http", "method": "GET", "path": "/verify", "query_string": query}
    return routes_verify.requirements(Request({**scope, "headers": list(headers)}))


def test_required_headers_are_read_whatever_the_case_of_their_names() -> None:
    # Servers send names in lower case, but ASGI allows either: a requirement spelled
    # otherwise must never be dropped (that would let any valid token through).
    assert _asked(b"", (b"X-Required-Permission", b"AlertRead")) == ["AlertRead"]
    assert _asked(b"", (b"x-required-permission", b"AlertRead, RuleRead")) == [
        "AlertRead",
        "RuleRead",
    ]
    with pytest.raises(ValidationFailed) as refused:
        _asked(b"", (b"X-Required-Role", b"admin"))
    assert "unknown header(s) x-required-role" in str(refused.value)


def test_only_queries_of_permissions_are_kept() -> None:
    routes_verify._queries.clear()
    assert _asked(b"permission=AlertRead&permission=RuleRead") == ["AlertRead", "RuleRead"]
    assert _asked(b"permission=AlertRead&permission=RuleRead") == ["AlertRead", "RuleRead"]
    with pytest.raises(ValidationFailed):
        _asked(b"permission=AlertRead&token=apitk_x")
    assert list(routes_verify._queries) == [b"permission=AlertRead&permission=RuleRead"]


def test_the_kept_queries_and_identities_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes_verify, "_queries", Kept(4))
    for n in range(10):
        assert _asked(f"permission=AlertRead&permission=R{n}".encode()) == ["AlertRead", f"R{n}"]
    assert list(routes_verify._queries) == [
        f"permission=AlertRead&permission=R{n}".encode() for n in range(6, 10)
    ]

    monkeypatch.setattr(routes_verify, "_identities", Kept(3))
    made = datetime(2026, 12, 2, tzinfo=UTC)
    tokens = [Token(f"t-{n}", f"name {n}", ("AlertRead",), (), made, SYSTEM) for n in range(7)]
    for token in tokens:
        answer = routes_verify.identity_response(token)
        assert (answer.status_code, dict(answer.headers)["x-token-name"]) == (
            204,
            routes_verify.header_text(token.name),
        )
    assert list(routes_verify._identities) == ["t-4", "t-5", "t-6"]
