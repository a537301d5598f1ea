"""Without trusted proxies, X-Forwarded-For is a claim anyone can make: it is ignored."""

from __future__ import annotations

import httpx
from api_support import READ, TOKENS, create

from support.inprocess import InProcessServer
from support.protocols import ApiClientFactory
from support.refusals import assert_refused_from


def _spoofing(server: InProcessServer, api: ApiClientFactory, value: str) -> httpx.Client:
    client = api(server, value)
    client.headers["X-Forwarded-For"] = "203.0.113.7"
    return client


def test_spoofed_forwarded_for_does_not_unlock_a_token(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    value = create(admin, "net", [READ], allowedCIDRBlocks=["203.0.113.0/24"])["value"]
    response = _spoofing(server, api, value).get(TOKENS)
    assert_refused_from(server, admin, response, "127.0.0.1")


def test_spoofed_forwarded_for_does_not_lock_out_the_real_peer(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    value = create(admin, "net", [READ], allowedCIDRBlocks=["127.0.0.1"])["value"]
    assert _spoofing(server, api, value).get(TOKENS).status_code == 200


def test_last_used_ips_record_the_peer_not_the_claim(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    value = create(admin, "net")["value"]
    assert _spoofing(server, api, value).get(f"{TOKENS}/self").json()["lastUsedIPs"] == [
        "127.0.0.1"
    ]
