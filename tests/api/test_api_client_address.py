"""allowedCIDRBlocks behind a trusted proxy: the tests play the proxy on 127.0.0.1 and say
which client they forward for in X-Forwarded-For."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from api_support import READ, TOKENS, body, create, error

from support.inprocess import InProcessServer
from support.protocols import ApiClientFactory
from support.refusals import UNKNOWN, assert_refused_from

INSIDE = "203.0.113.7"
OUTSIDE = "198.51.100.1"


@pytest.fixture
def server(proxied_server: InProcessServer) -> InProcessServer:
    """The app believing X-Forwarded-For from 127.0.0.1 (the tests play the proxy)."""
    return proxied_server


def _token(admin: httpx.Client, blocks: Sequence[str]) -> dict[str, Any]:
    return create(admin, "net", [READ], allowedCIDRBlocks=list(blocks))


def _from(
    server: InProcessServer, api: ApiClientFactory, value: str, forwarded_for: str
) -> httpx.Client:
    client = api(server, value)
    client.headers["X-Forwarded-For"] = forwarded_for
    return client


def test_client_inside_a_block_is_allowed(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    value = _token(admin, ["203.0.113.0/24"])["value"]
    assert _from(server, api, value, INSIDE).get(TOKENS).status_code == 200


def test_client_outside_every_block_is_refused(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    value = _token(admin, ["203.0.113.0/24", "2001:db8::/32"])["value"]
    response = _from(server, api, value, OUTSIDE).get(TOKENS)
    assert_refused_from(server, admin, response, OUTSIDE)


def test_the_proxy_itself_is_not_the_client(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    value = _token(admin, ["127.0.0.1/32"])["value"]
    assert_refused_from(server, admin, _from(server, api, value, INSIDE).get(TOKENS), INSIDE)


def test_without_forwarded_for_the_peer_is_the_client(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    value = _token(admin, ["203.0.113.0/24"])["value"]
    response = api(server, value).get(TOKENS)
    assert_refused_from(server, admin, response, "127.0.0.1")


def test_right_most_hop_is_the_client(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    value = _token(admin, ["203.0.113.0/24"])["value"]
    assert _from(server, api, value, f"{OUTSIDE}, {INSIDE}").get(TOKENS).status_code == 200
    spoofed_left = _from(server, api, value, f"{INSIDE}, {OUTSIDE}").get(TOKENS)
    assert_refused_from(server, admin, spoofed_left, OUTSIDE)


def test_the_block_is_enforced_on_self_operations(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    token = _token(admin, ["203.0.113.0/24"])
    outside = _from(server, api, token["value"], OUTSIDE)
    assert error(outside.get(f"{TOKENS}/self"), 403)
    assert error(outside.post(f"{TOKENS}/self/rotate"), 403)
    assert error(outside.delete(f"{TOKENS}/self"), 403)
    assert admin.get(f"{TOKENS}/{token['id']}").json()["rotatedAt"] is None


def test_ipv6_client_inside_a_block_is_allowed(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    value = _token(admin, ["2001:db8::/32"])["value"]
    assert _from(server, api, value, "2001:db8::5").get(TOKENS).status_code == 200


def test_ipv6_client_outside_every_block_is_refused(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    value = _token(admin, ["2001:db8::/32"])["value"]
    response = _from(server, api, value, "2001:db9::5").get(TOKENS)
    assert_refused_from(server, admin, response, "2001:db9::5")


def test_single_ipv6_address_block(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    value = _token(admin, ["2001:db8::5"])["value"]
    assert _from(server, api, value, "2001:db8::5").get(TOKENS).status_code == 200
    assert error(_from(server, api, value, "2001:db8::6").get(TOKENS), 403)


def test_mapped_ipv6_client_matches_an_ipv4_block(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    value = _token(admin, ["203.0.113.0/24"])["value"]
    assert _from(server, api, value, f"::ffff:{INSIDE}").get(TOKENS).status_code == 200
    outside = _from(server, api, value, f"::ffff:{OUTSIDE}").get(TOKENS)
    assert_refused_from(server, admin, outside, OUTSIDE)


def test_mapped_ipv6_block_matches_an_ipv4_client(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    token = _token(admin, ["::ffff:203.0.113.0/120"])
    assert token["allowedCIDRBlocks"] == ["203.0.113.0/24"]
    assert _from(server, api, token["value"], INSIDE).get(TOKENS).status_code == 200


def test_empty_blocks_allow_any_client(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    value = _token(admin, [])["value"]
    for address in (INSIDE, OUTSIDE, "2001:db8::5"):
        assert _from(server, api, value, address).get(TOKENS).status_code == 200


def test_junk_forwarded_for_is_an_unknown_client_never_the_proxy(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    value = _token(admin, ["203.0.113.0/24"])["value"]
    response = _from(server, api, value, "not-an-address").get(TOKENS)
    assert_refused_from(server, admin, response, UNKNOWN)
    proxy = _token(admin, ["127.0.0.1/32"])["value"]
    response = _from(server, api, proxy, "not-an-address").get(TOKENS)
    assert_refused_from(server, admin, response, UNKNOWN)
    assert _from(server, api, proxy, "unknown").get(TOKENS).status_code == 403
    assert _from(server, api, value, f"{INSIDE}:4711").get(TOKENS).status_code == 200


def test_adding_blocks_takes_effect_at_once(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    token = _token(admin, [])
    outside = _from(server, api, token["value"], OUTSIDE)
    assert outside.get(TOKENS).status_code == 200  # now cached in memory
    update = admin.post(
        f"{TOKENS}/{token['id']}", json=body("net", [READ], allowedCIDRBlocks=["203.0.113.0/24"])
    )
    assert update.status_code == 200
    assert_refused_from(server, admin, outside.get(TOKENS), OUTSIDE)


def test_clearing_blocks_opens_the_token(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    token = _token(admin, ["203.0.113.0/24"])
    outside = _from(server, api, token["value"], OUTSIDE)
    assert error(outside.get(TOKENS), 403)
    admin.post(f"{TOKENS}/{token['id']}", json=body("net", [READ], allowedCIDRBlocks=[]))
    assert outside.get(TOKENS).status_code == 200


def test_last_used_ips_record_the_forwarded_client(
    server: InProcessServer, admin: httpx.Client, api: ApiClientFactory
) -> None:
    value = _token(admin, [])["value"]
    response = _from(server, api, value, INSIDE).get(f"{TOKENS}/self")
    assert response.json()["lastUsedIPs"] == [INSIDE]
