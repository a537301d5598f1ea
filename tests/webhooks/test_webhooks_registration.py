"""Registering webhooks: validation, permissions, the address rule, the audit trail."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import httpx
import pytest
from webhook_app import App, AppFactory

from apitokens.domain.events import EVENT_TYPES
from apitokens.domain.network import IPAddress
from apitokens.domain.permissions import TOKEN_MODIFY, TOKEN_READ
from apitokens.service.destinations import DestinationRefused, Destinations, non_public

PRIVATE_URLS = [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[::ffff:10.0.0.1]/hook",
    "http://[fd00:ec2::254]/hook",
    "http://100.64.0.1/hook",
    "http://0.0.0.0/hook",
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_a_private_destination_is_refused_without_the_setting(
    app_factory: AppFactory, url: str
) -> None:
    app = app_factory(webhook_allow_private=False)
    refused = app.post("/webhooks", {"url": url})
    assert refused.status_code == 400
    message = refused.json()["message"]
    assert message.startswith("url: the host ")
    assert "APITOKENS_WEBHOOK_ALLOW_PRIVATE=true" in message
    assert app.get("/webhooks").json() == {"results": []}


def test_the_setting_allows_a_private_destination(app: App) -> None:
    created = app.post("/webhooks", {"url": "http://127.0.0.1:8080/hook"})
    assert created.status_code == 200


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("93.184.216.34", False),
        ("2606:2800:220:1:248:1893:25c8:1946", False),
        ("127.0.0.1", True),
        ("10.0.0.1", True),
        ("172.16.0.1", True),
        ("169.254.169.254", True),
        ("100.100.100.200", True),  # shared address space (a cloud metadata service)
        ("224.0.0.1", True),
        ("255.255.255.255", True),
        ("::1", True),
        ("fe80::1", True),
        ("fd00:ec2::254", True),
        ("::ffff:127.0.0.1", True),
        ("2002:a00:1::", True),  # 6to4 of 10.0.0.1
        ("64:ff9b::a9fe:a9fe", True),  # NAT64 of 169.254.169.254
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", True),  # Teredo client 10.0.0.1
    ],
)
def test_non_public_addresses(address: str, refused: bool) -> None:
    assert non_public(ipaddress.ip_address(address)) is refused


class FlippingResolver:
    """A DNS answer that changes between two lookups (DNS rebinding)."""

    def __init__(self, *answers: str) -> None:
        self.answers = [ipaddress.ip_address(answer) for answer in answers]

    def __call__(self, host: str, port: int) -> Sequence[IPAddress]:
        return [self.answers.pop(0)]


def test_a_send_connects_to_the_address_it_checked() -> None:
    destinations = Destinations(False, FlippingResolver("93.184.216.34", "127.0.0.1"))
    assert destinations.check("https://hooks.example.com:8443/x?y=1") == (
        "https://hooks.example.com:8443/x?y=1"
    )
    with pytest.raises(DestinationRefused):
        destinations.pin("https://hooks.example.com:8443/x?y=1")  # now it says 127.0.0.1
    pinned = Destinations(False, FlippingResolver("93.184.216.34")).pin(
        "https://hooks.example.com/x?y=1"
    )
    assert pinned.url == "https://93.184.216.34:443/x?y=1"
    assert pinned.headers == {"host": "hooks.example.com"}
    assert pinned.extensions == {"sni_hostname": "hooks.example.com"}
    request = httpx.Request("POST", pinned.url, headers=pinned.headers)
    assert request.headers["host"] == "hooks.example.com"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"url": "ftp://example.com/x"}, "url: must be an absolute http:// or https:// URL"),
        ({"url": "/relative"}, "url: must be an absolute http:// or https:// URL"),
        ({"url": "http://exa mple.com/"}, "url: must not contain spaces or control characters"),
        ({"url": "http://127.0.0.1:99999/"}, "url: is not a valid URL: Port out of range 0-65535"),
        ({"url": 5}, "url: input should be a valid string"),
        ({}, "url: is required"),
        (
            {"url": "http://127.0.0.1/", "events": ["api_token.exploded"]},
            "events: unknown event api_token.exploded; accepted: " + ", ".join(EVENT_TYPES),
        ),
        (
            {"url": "http://127.0.0.1/", "events": []},
            "events: give at least one event, or leave it out for all",
        ),
        (
            {"url": "http://127.0.0.1/", "description": "x" * 257},
            "description: longer than 256 characters",
        ),
        (
            {"url": "http://127.0.0.1/", "evnts": ["api_token.created"]},
            "evnts: unknown field (accepted fields: url, events, description)",
        ),
    ],
)
def test_bad_registrations_are_refused_with_the_field_named(
    app: App, body: dict[str, object], message: str
) -> None:
    refused = app.post("/webhooks", body)
    assert (refused.status_code, refused.json()["message"]) == (400, message)


def test_credentials_in_the_url_are_refused(app: App) -> None:
    refused = app.post("/webhooks", {"url": "https://user:pw@127.0.0.1/hook"})
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("url: must not carry credentials")
    assert "pw" not in refused.json()["message"]


def test_create_list_delete_and_the_audit_trail(app: App) -> None:
    created = app.post(
        "/webhooks",
        {
            "url": "http://127.0.0.1:9/a",
            "events": ["api_token.rotated", "api_token.created", "api_token.created"],
            "description": "ops",
        },
    )
    assert created.status_code == 200
    assert created.headers["cache-control"] == "no-store"
    hook = created.json()
    assert set(hook) == {"id", "url", "events", "description", "createdAt", "secret"}
    assert hook["events"] == ["api_token.created", "api_token.rotated"]  # catalog order
    app.clock.advance(1)  # listed newest first
    second = app.hook("http://127.0.0.1:9/b")
    assert second["events"] == list(EVENT_TYPES)
    first_page = app.get("/webhooks", limit=1).json()
    assert [item["id"] for item in first_page["results"]] == [second["id"]]
    rest = app.get("/webhooks", limit=1, cursor=first_page["next"]).json()
    assert rest == {"results": [{key: hook[key] for key in hook if key != "secret"}]}
    assert app.get("/webhooks", cursor="junk").status_code == 400
    assert app.delete(f"/webhooks/{hook['id']}").status_code == 204
    assert app.delete(f"/webhooks/{hook['id']}").status_code == 404
    assert app.get(f"/webhooks/{hook['id']}/deliveries").status_code == 404
    trail = app.get("/audit-events").json()["results"]
    actions = [(event["action"], event["detail"].get("webhookId")) for event in trail[:3]]
    assert actions == [
        ("webhook.delete", hook["id"]),
        ("webhook.create", second["id"]),
        ("webhook.create", hook["id"]),
    ]
    assert trail[0]["actor"]["type"] == "api-token"


@pytest.mark.parametrize(
    ("permissions", "create", "read"),
    [
        ([TOKEN_READ], 403, 200),
        ([TOKEN_MODIFY], 403, 403),
        ([TOKEN_READ, TOKEN_MODIFY], 200, 200),
        (["AlertRead"], 403, 403),
    ],
)
def test_permissions(app: App, permissions: list[str], create: int, read: int) -> None:
    existing = app.hook("http://127.0.0.1:9/a")
    value = app.token("caller", permissions)["value"]
    assert app.post("/webhooks", {"url": "http://127.0.0.1:9/b"}, value=value).status_code == (
        create
    )
    assert app.get("/webhooks", value=value).status_code == read
    assert app.get(f"/webhooks/{existing['id']}/deliveries", value=value).status_code == read
    deleted = app.delete(f"/webhooks/{existing['id']}", value=value).status_code
    assert deleted == (204 if TOKEN_MODIFY in permissions else 403)
