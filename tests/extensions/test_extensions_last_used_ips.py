"""``lastUsedIPs``: the last five distinct client addresses, newest first, coalesced like
``lastUsedAt`` and kept across a restart."""

from __future__ import annotations

import httpx
from extension_helpers import create_token, key

from support.inprocess import InProcessServer
from support.protocols import ApiClientFactory, AppFactory


def _use_from(admin: httpx.Client, value: str, address: str) -> None:
    response = admin.get("/verify", headers={**key(value), "X-Forwarded-For": address})
    assert response.status_code == 204, response.text


def _ips(admin: httpx.Client, token_id: str) -> list[str]:
    ips: list[str] = admin.get(f"/api-tokens/{token_id}").json()["lastUsedIPs"]
    return ips


def test_last_five_distinct_addresses_newest_first_and_kept_across_restart(
    ext_server: InProcessServer, api: ApiClientFactory
) -> None:
    admin = api(ext_server, ext_server.admin)
    token = create_token(admin, "roaming")
    assert token["lastUsedIPs"] == []
    for n in range(1, 8):
        _use_from(admin, token["value"], f"10.0.0.{n}")
    newest = ["10.0.0.7", "10.0.0.6", "10.0.0.5", "10.0.0.4", "10.0.0.3"]
    assert _ips(admin, token["id"]) == newest  # pending in memory, already visible

    _use_from(admin, token["value"], "10.0.0.5")  # a repeat moves to the front
    _use_from(admin, token["value"], "2001:db8::1")
    _use_from(admin, token["value"], "::ffff:192.0.2.9")  # IPv4-mapped: shown as IPv4
    expected = ["192.0.2.9", "2001:db8::1", "10.0.0.5", "10.0.0.7", "10.0.0.6"]
    assert _ips(admin, token["id"]) == expected

    ext_server.restart()  # a clean shutdown writes what is pending
    admin = api(ext_server, ext_server.admin)
    body = admin.get(f"/api-tokens/{token['id']}").json()
    assert body["lastUsedIPs"] == expected
    assert body["lastUsedAt"] is not None


def test_addresses_from_separate_flushes_merge_newest_first(
    ext_server: InProcessServer, admin: httpx.Client
) -> None:
    token = create_token(admin, "merging")
    for address in ("10.1.0.1", "10.1.0.2", "10.1.0.3"):
        _use_from(admin, token["value"], address)
        ext_server.flush()  # each address is written by its own flush
    expected = ["10.1.0.1", "10.1.0.3", "10.1.0.2"]
    _use_from(admin, token["value"], "10.1.0.1")
    assert _ips(admin, token["id"]) == expected  # pending, shown merged with the stored
    ext_server.flush()
    assert _ips(admin, token["id"]) == expected  # and the same once written


def test_forwarded_for_is_ignored_from_an_untrusted_peer(
    ext_server_factory: AppFactory, api: ApiClientFactory
) -> None:
    server = ext_server_factory(args=())  # no trusted proxies
    admin = api(server, server.admin)
    token = create_token(admin, "direct")
    _use_from(admin, token["value"], "10.9.9.9")
    assert _ips(admin, token["id"]) == ["127.0.0.1"]


def test_trusted_proxy_rule_is_the_documented_one(admin: httpx.Client) -> None:
    token = create_token(admin, "chain")
    # The right-most untrusted hop is the client; a port is not part of it; junk makes the
    # client unknown (no address recorded: never the proxy's own).
    _use_from(admin, token["value"], "198.51.100.1, 127.0.0.1")
    _use_from(admin, token["value"], "198.51.100.2, not-an-address")
    _use_from(admin, token["value"], "198.51.100.3:4711")
    assert _ips(admin, token["id"]) == ["198.51.100.3", "198.51.100.1"]
