"""What the document says is what the service does (issue 15), and the hardening items
that go with it: no redirects, /verify fails closed, every string handled, /docs offline.

In-process: the app from ``create_app`` with its lifespan (migrations), over httpx's ASGI
transport, on each backend.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from apitokens.http.app import create_app
from apitokens.settings import Settings
from support.inprocess import create_admin

READ = "OrganizationAPITokenRead"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


# Names and strings meet each database's own rules (PostgreSQL refuses NUL in text), so
# both run; each test's database starts as a copy of a migrated, empty one.
pytestmark = pytest.mark.app_backends("sqlite", "postgresql")
HTTP_ONLY = pytest.mark.app_backends("sqlite")
"""For the checks of the HTTP layer alone (methods, redirects, /verify's requirements, the
docs page): the store never sees their input, so SQLite is enough."""


@pytest.fixture
async def api(app_database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client of a fresh app; the peer is 127.0.0.1."""
    settings = Settings(database_url=app_database_url, refusal_delay_seconds=0)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with app.router.lifespan_context(app):
        admin = create_admin(app.state.services, "admin")  # as `apitokens bootstrap` does
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers={"X-API-Key": admin}
        ) as client:
            yield client


async def _document(api: httpx.AsyncClient) -> dict[str, Any]:
    answer = await api.get("/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def _concrete(path: str) -> str:
    return path.replace("{id}", "00000000-0000-4000-8000-000000000000")


# -- 405: Allow names exactly the declared methods -------------------------------------------


@HTTP_ONLY
async def test_undeclared_methods_get_405_naming_exactly_the_declared_ones(
    api: httpx.AsyncClient,
) -> None:
    document = await _document(api)
    checked = 0
    for path, operations in document["paths"].items():
        declared = {method.upper() for method in operations}
        for method in set(METHODS) - declared:
            answer = await api.request(method, _concrete(path))
            assert answer.status_code == 405, (method, path, answer.text)
            allowed = {part.strip() for part in answer.headers["allow"].split(",")}
            assert allowed == declared, (method, path, allowed)
            if method != "HEAD":
                assert answer.json()["code"] == "method_not_allowed"
            checked += 1
    assert checked > 30


@HTTP_ONLY
async def test_options_on_the_token_paths_lists_every_served_method(
    api: httpx.AsyncClient,
) -> None:
    collection = await api.options("/api-tokens")
    assert (collection.status_code, collection.headers["allow"]) == (405, "GET, POST")
    one = await api.options("/api-tokens/abc")
    assert (one.status_code, one.headers["allow"]) == (405, "GET, POST, DELETE")


# -- /verify ---------------------------------------------------------------------------------


@HTTP_ONLY
@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
async def test_verify_serves_and_declares_every_method_a_proxy_forwards(
    api: httpx.AsyncClient, method: str
) -> None:
    document = await _document(api)
    assert method.lower() in document["paths"]["/verify"]
    answer = await api.request(method, "/verify", params={"permission": READ})
    assert answer.status_code == 204, answer.text
    assert answer.headers["x-token-permissions"].startswith("AIRunAsModify,")


@HTTP_ONLY
@pytest.mark.parametrize(
    ("params", "headers", "message"),
    [
        ({"permission": ""}, {}, "permission: must name a permission"),
        ({"permission": f"{READ},"}, {}, "permission: must name a permission"),
        ({"permission": f"{READ},,{READ}"}, {}, "permission: must name a permission"),
        ({"permission": " "}, {}, "permission: must name a permission"),
        ({}, {"X-Required-Permission": ""}, "X-Required-Permission: must name a permission"),
        ({}, {"X-Required-Permission": " , "}, "X-Required-Permission: must name a permission"),
        ({"Permission": READ}, {}, "query: unknown parameter(s) 'Permission'"),
        ({"permission[]": READ}, {}, "query: unknown parameter(s) 'permission[]'"),
        ({"permissions": READ}, {}, "query: unknown parameter(s) 'permissions'"),
        ({"permission": READ, "debug": "1"}, {}, "query: unknown parameter(s) 'debug'"),
        ({}, {"X-Required-Permissions": READ}, "headers: unknown header(s) x-required-permissions"),
        ({}, {"X-Required-Role": "admin"}, "headers: unknown header(s) x-required-role"),
        ({"permission": "PolicyRaed"}, {}, "permission: unknown permission(s) PolicyRaed"),
    ],
)
async def test_verify_fails_closed_on_a_requirement_it_cannot_read(
    api: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str], message: str
) -> None:
    """A typo or an unset variable in a proxy's configuration is a 400, never a 204; the
    same with or without a valid key (the key is not even looked at)."""
    for key in (None, "junk"):
        extra = {"X-API-Key": key} if key else {}
        answer = await api.get("/verify", params=params, headers={**headers, **extra})
        assert answer.status_code == 400, (params, headers, answer.text)
        assert answer.json()["message"].startswith(message), answer.text


@HTTP_ONLY
async def test_verify_reads_the_documented_requirement_forms(api: httpx.AsyncClient) -> None:
    both = await api.get(
        "/verify?permission=AlertRead&permission=RuleRead,%20PolicyRead",
        headers={"X-Required-Permission": f"{READ}, AlertModify"},
    )
    assert both.status_code == 204, both.text


# -- no redirects ----------------------------------------------------------------------------


@HTTP_ONLY
async def test_no_path_redirects_and_none_is_built_from_the_host_header(
    api: httpx.AsyncClient,
) -> None:
    document = await _document(api)
    paths = [_concrete(path) for path in document["paths"]] + ["/docs"]
    for path in paths:
        for method in ("GET", "POST", "DELETE", "PUT"):
            answer = await api.request(
                method, f"{path}/", headers={"Host": "attacker.example"}, json={}
            )
            assert answer.status_code == 404, (method, path, answer.status_code)
            assert "location" not in answer.headers
            assert "attacker.example" not in answer.text
    console = await api.get("/console", headers={"Host": "attacker.example"})
    assert console.status_code == 404  # the console is at /console/; no redirect to it
    assert "location" not in console.headers


@HTTP_ONLY
async def test_create_with_a_trailing_slash_is_a_404_not_a_307(api: httpx.AsyncClient) -> None:
    answer = await api.post(
        "/api-tokens/",
        headers={"Host": "attacker.example"},
        json={"name": "n", "permissions": []},
    )
    assert (answer.status_code, answer.json()) == (
        404,
        {"message": "no route /api-tokens/", "code": "not_found"},
    )
    assert (await api.get("/api-tokens")).json()["results"][0]["name"] == "admin"


# -- every string is handled -----------------------------------------------------------------

BAD_NAMES = {
    "\\ud800": "name: must be valid Unicode text, not a lone surrogate (U+D800 at position 0)",
    "a\\udfffb": "name: must be valid Unicode text, not a lone surrogate (U+DFFF at position 1)",
    "a\\u0000b": "U+0000 at position 1",
    "a\\u001b[2Jb": "U+001B at position 1",
    "a\\u0085b": "U+0085 at position 1",
    "a\\u009bb": "U+009B at position 1",
    "evil\\u202etxt.exe": "U+202E at position 4",
    "a\\u2066b": "U+2066 at position 1",
    "a\\u200fb": "U+200F at position 1",
    "a\\u2028b": "U+2028 at position 1",
    "a\\nb": "U+000A at position 1",
}


@pytest.mark.parametrize("escaped", list(BAD_NAMES))
async def test_names_that_cannot_be_stored_or_shown_are_refused(
    api: httpx.AsyncClient, escaped: str
) -> None:
    body = f'{{"name": "{escaped}", "permissions": []}}'.encode()
    headers = {"content-type": "application/json"}
    created = await api.post("/api-tokens", content=body, headers=headers)
    assert created.status_code == 400, created.text
    assert BAD_NAMES[escaped] in created.json()["message"]
    updated = await api.post("/api-tokens/self", content=body, headers=headers)
    assert updated.status_code == 400, updated.text
    listed = (await api.get("/api-tokens")).json()["results"]
    assert [token["name"] for token in listed] == ["admin"]  # nothing written


async def test_names_keep_ordinary_unicode_and_trim_white_space(api: httpx.AsyncClient) -> None:
    answer = await api.post(
        "/api-tokens", json={"name": "\t déploiement ✓ 🚀 \n", "permissions": []}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["name"] == "déploiement ✓ 🚀"


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "n", "permissions": ["\\ud800"]}',
        '{"name": "n", "permissions": ["\\u001b[31mRuleRead"]}',
        '{"name": "n", "permissions": [], "allowedCIDRBlocks": ["\\udc00"]}',
        '{"name": "n", "permissions": [], "allowedCIDRBlocks": ["10.0.0.0/8\\u0000"]}',
        '{"name": "n", "permissions": [], "expiresAt": "2030-01-01T00:00:00Z\\ud800"}',
        '{"name": "n", "permissions": [], "expiresAt": 2000000000}',
        '{"name": "n\\ud800", "permissions": ["\\ud800"], "allowedCIDRBlocks": ["\\ud800"]}',
    ],
)
async def test_every_body_string_is_handled(api: httpx.AsyncClient, body: str) -> None:
    answer = await api.post(
        "/api-tokens", content=body.encode(), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400, answer.text
    message = answer.json()["message"]
    assert not re.search("[\x00-\x1f\x7f-\x9f\u202a-\u202e]", message), message


async def test_a_leak_report_with_a_lone_surrogate_is_a_400(api: httpx.AsyncClient) -> None:
    answer = await api.post(
        "/leaked-values",
        content=b'{"value": "apitk_\\ud800"}',
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["message"].startswith("value: must be valid Unicode text")


@pytest.mark.parametrize(
    "url",
    [
        "/api-tokens/%00",
        "/api-tokens/%ff%fe",
        "/api-tokens/%ed%a0%80",  # a surrogate, UTF-8 encoded
        "/api-tokens/%1b%5b2J",
        "/api-tokens/%e2%80%ae",
        "/api-tokens/%00/rotate",
    ],
)
async def test_ids_in_paths_never_cause_a_server_error(api: httpx.AsyncClient, url: str) -> None:
    for method in ("POST",) if url.endswith("/rotate") else ("GET", "POST", "DELETE"):
        body = {"name": "n", "permissions": []} if method == "POST" else None
        answer = await api.request(method, url, json=body)
        assert answer.status_code == 404, (method, url, answer.text)
        assert not re.search("[\x00-\x1f\x7f-\x9f\u202a-\u202e]", answer.json()["message"])


@pytest.mark.parametrize(
    "query",
    [
        "cursor=%00",
        "cursor=%ed%a0%80",
        "cursor=1%0a.abc",
        "cursor=12.%1b",
        "cursor=eyJ0IjoiMDAwMS0wMS0wMVQwMDowMDowMCswMTowMCIsImkiOiJ4In0",  # the old format
        "limit=%00",
        "limit=1%00",
    ],
)
async def test_query_strings_never_cause_a_server_error(api: httpx.AsyncClient, query: str) -> None:
    for path in ("/api-tokens", "/audit-events"):
        answer = await api.get(f"{path}?{query}")
        assert answer.status_code == 400, (path, query, answer.text)


@pytest.mark.parametrize("value", ["%00", "%ed%a0%80", "%1b[2J", "x" * 64])
async def test_audit_filters_never_cause_a_server_error(api: httpx.AsyncClient, value: str) -> None:
    answer = await api.get(f"/audit-events?tokenId={value}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"] == []
    action = await api.get(f"/audit-events?action={value}")
    assert action.status_code == 400, action.text


async def test_header_bytes_that_are_not_ascii_never_cause_a_server_error(
    api: httpx.AsyncClient,
) -> None:
    weird = "\x85\xa0\xff\u00e9"
    for name in ("X-API-Key", "X-Required-Permission", "X-Forwarded-For", "Authorization"):
        headers = [(name.encode(), weird.encode("latin-1"))]
        answer = await api.get("/verify", headers=headers)
        # X-Forwarded-For from a peer that is not a trusted proxy is not read at all.
        # (and the client's valid X-API-Key wins over a junk Authorization header).
        expected = 400 if "Required" in name else 401 if name == "X-API-Key" else 204
        assert answer.status_code == expected, (name, answer.text)
        if expected != 204:
            message = answer.json()["message"]
            assert not re.search("[\x00-\x1f\x7f-\x9f]", message), message


async def test_pages_still_follow_each_other_with_the_new_cursor(api: httpx.AsyncClient) -> None:
    for number in range(5):
        made = await api.post("/api-tokens", json={"name": f"t{number}", "permissions": []})
        assert made.status_code == 200
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/api-tokens", params=params)).json()
        seen += [token["name"] for token in page["results"]]
        cursor = page.get("next")
        if not cursor:
            break
        assert re.fullmatch(r"[0-9]+\.[0-9a-f-]+", cursor), cursor
    assert seen == ["t4", "t3", "t2", "t1", "t0", "admin"]


# -- /docs -----------------------------------------------------------------------------------


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for attribute in ("src", "href"):
            if found.get(attribute):
                self.urls.append(str(found[attribute]))
        if tag == "script" and not found.get("src"):
            self.inline_scripts += 1
        if any(name.startswith("on") for name in found) or "style" in found:
            self.inline_scripts += 1


@HTTP_ONLY
async def test_docs_load_only_same_origin_assets_under_a_strict_policy(
    api: httpx.AsyncClient,
) -> None:
    page = await api.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self';" in policy
    assert "unsafe" not in policy and "http" not in policy and "*" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    parser = _References()
    parser.feed(page.text)
    assert parser.inline_scripts == 0
    assert sorted(parser.urls) == [
        "docs/init.js",
        "docs/swagger-ui-bundle.js",
        "docs/swagger-ui.css",
    ]
    for url in parser.urls:
        assert not re.match(r"^([a-z]+:|//)", url), url  # relative: this origin only
        asset = await api.get(f"/{url}")
        assert asset.status_code == 200, url
        assert asset.headers["x-content-type-options"] == "nosniff"
        kind = "text/css" if url.endswith(".css") else "text/javascript"
        assert asset.headers["content-type"].startswith(kind), url
        assert len(asset.content) > (100 if url.endswith("init.js") else 100_000)
    init = (await api.get("/docs/init.js")).text
    assert 'new URL("openapi.json", document.baseURI)' in init
    assert not re.search(r"https?://", init)
    bundle = await api.get("/docs/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text
    assert (await api.get("/docs/redoc.standalone.js")).status_code == 404
    assert (await api.get("/docs/..%2fapp.py")).status_code == 404
