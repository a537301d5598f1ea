"""CIDR blocks and the client address (trusted proxies, X-Forwarded-For, mapped IPv6)."""

from __future__ import annotations

import ipaddress

import pytest

from apitokens.domain import network
from apitokens.domain.errors import ValidationFailed
from apitokens.domain.network import (
    MAX_CIDR_BLOCKS,
    address_allowed,
    client_address,
    networks_of,
    normalize_blocks,
    parse_address,
    parse_block,
)

LOOPBACK_PROXY = (ipaddress.ip_network("127.0.0.1/32"),)
TWO_PROXIES = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8"))


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


# -- parse_block / normalize_blocks ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("192.0.2.7", "192.0.2.7/32"),
        ("2001:db8::1", "2001:db8::1/128"),
        ("2001:db8::/32", "2001:db8::/32"),
        (" 10.1.0.0/16 ", "10.1.0.0/16"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("::/0", "::/0"),
        ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
        ("::ffff:192.0.2.7", "192.0.2.7/32"),
    ],
)
def test_parse_block_returns_the_canonical_network(text: str, canonical: str) -> None:
    assert parse_block(text).with_prefixlen == canonical


def test_parse_block_with_host_bits_suggests_the_network() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_block("10.0.0.1/8")
    assert caught.value.field == "allowedCIDRBlocks"
    assert caught.value.message == (
        "allowedCIDRBlocks: '10.0.0.1/8' has host bits set; did you mean '10.0.0.0/8'?"
    )


def test_parse_block_with_ipv6_host_bits_suggests_the_network() -> None:
    with pytest.raises(ValidationFailed, match=r"did you mean '2001:db8::/32'\?"):
        parse_block("2001:db8::1/32")


@pytest.mark.parametrize(
    "text", ["", "nope", "10.0.0.0/33", "10.0.0/8", "300.1.1.1", "2001:db8::/129", "10.0.0.0/-1"]
)
def test_parse_block_refuses_text_that_is_not_a_block(text: str) -> None:
    with pytest.raises(ValidationFailed, match="is not a CIDR block"):
        parse_block(text)


def test_normalize_blocks_collapses_duplicates_keeping_order() -> None:
    blocks = ["10.0.0.1", "2001:db8::/32", "10.0.0.1/32", "::ffff:10.0.0.1"]
    assert normalize_blocks(blocks) == ("10.0.0.1/32", "2001:db8::/32")


def test_normalize_blocks_accepts_the_maximum() -> None:
    blocks = [f"10.0.{index}.0/24" for index in range(MAX_CIDR_BLOCKS)]
    assert len(normalize_blocks(blocks)) == MAX_CIDR_BLOCKS


def test_normalize_blocks_refuses_more_than_the_maximum() -> None:
    blocks = [f"10.0.{index}.0/24" for index in range(MAX_CIDR_BLOCKS + 1)]
    with pytest.raises(ValidationFailed, match="at most 100 blocks"):
        normalize_blocks(blocks)


def test_normalize_blocks_of_nothing_is_empty() -> None:
    assert normalize_blocks([]) == ()


# -- address_allowed ---------------------------------------------------------------------


def test_empty_allowlist_allows_any_address_and_none() -> None:
    assert address_allowed(_ip("203.0.113.9"), ())
    assert address_allowed(None, ())


def test_address_inside_a_block_is_allowed() -> None:
    networks = networks_of(["10.0.0.0/8", "2001:db8::/32"])
    assert address_allowed(_ip("10.255.0.1"), networks)
    assert address_allowed(_ip("2001:db8::42"), networks)


def test_address_outside_every_block_is_refused() -> None:
    networks = networks_of(["10.0.0.0/8", "2001:db8::/32"])
    assert not address_allowed(_ip("11.0.0.1"), networks)
    assert not address_allowed(_ip("2001:db9::1"), networks)


def test_unknown_address_is_refused_by_a_non_empty_allowlist() -> None:
    assert not address_allowed(None, networks_of(["0.0.0.0/0"]))


def test_mapped_ipv6_address_matches_an_ipv4_block() -> None:
    address = parse_address("::ffff:10.1.2.3")
    assert address == _ip("10.1.2.3")
    assert address_allowed(address, networks_of(["10.0.0.0/8"]))


# -- parse_address -----------------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", "junk", "10.0.0.1/8", "1.2.3", "unknown"])
def test_parse_address_returns_none_for_non_addresses(text: str | None) -> None:
    assert parse_address(text) is None


def test_parse_address_strips_spaces() -> None:
    assert parse_address(" 192.0.2.1 ") == _ip("192.0.2.1")


# -- client_address ----------------------------------------------------------------------


def test_client_is_the_peer_without_forwarded_for() -> None:
    assert client_address("192.0.2.1", [], LOOPBACK_PROXY) == _ip("192.0.2.1")


def test_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    assert client_address("192.0.2.1", ["203.0.113.5"], LOOPBACK_PROXY) == _ip("192.0.2.1")


def test_forwarded_for_is_ignored_without_trusted_proxies() -> None:
    assert client_address("127.0.0.1", ["203.0.113.5"], ()) == _ip("127.0.0.1")


def test_forwarded_for_from_a_trusted_peer_is_believed() -> None:
    assert client_address("127.0.0.1", ["203.0.113.5"], LOOPBACK_PROXY) == _ip("203.0.113.5")


def test_right_most_untrusted_hop_is_the_client() -> None:
    header = "198.51.100.1, 203.0.113.5"  # the left hop is whatever the client claimed
    assert client_address("127.0.0.1", [header], LOOPBACK_PROXY) == _ip("203.0.113.5")


def test_walk_passes_further_trusted_proxies() -> None:
    header = "198.51.100.1, 203.0.113.5, 10.0.0.7"
    assert client_address("127.0.0.1", [header], TWO_PROXIES) == _ip("203.0.113.5")


def test_only_trusted_hops_give_the_left_most_hop() -> None:
    assert client_address("127.0.0.1", ["10.0.0.9, 10.0.0.7"], TWO_PROXIES) == _ip("10.0.0.9")


def test_junk_right_most_hop_is_an_unknown_client_never_the_proxy() -> None:
    assert client_address("127.0.0.1", ["203.0.113.5, junk"], LOOPBACK_PROXY) is None


def test_junk_hop_behind_trusted_hops_is_an_unknown_client() -> None:
    header = "203.0.113.5, not-an-ip, 10.0.0.7"
    assert client_address("127.0.0.1", [header], TWO_PROXIES) is None


def test_empty_forwarded_for_from_a_trusted_proxy_is_an_unknown_client() -> None:
    assert client_address("127.0.0.1", [""], LOOPBACK_PROXY) is None


@pytest.mark.parametrize(
    ("hop", "client"),
    [
        ("203.0.113.5:1234", "203.0.113.5"),
        ("203.0.113.5:0", "203.0.113.5"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("[::ffff:203.0.113.5]:80", "203.0.113.5"),
        (" 203.0.113.5:65535 ", "203.0.113.5"),
    ],
)
def test_forwarded_hops_with_ports_are_parsed(hop: str, client: str) -> None:
    assert client_address("127.0.0.1", [f"198.51.100.1, {hop}"], LOOPBACK_PROXY) == _ip(client)


@pytest.mark.parametrize(
    "hop",
    [
        "unknown",
        "UNKNOWN",
        "_hidden",
        "",
        " ",
        "203.0.113.5:",
        "203.0.113.5:65536",
        "203.0.113.5:http",
        "203.0.113.5:12:34",
        "[203.0.113.5]",
        "[203.0.113.5]:80",
        "[2001:db8::1",
        "[2001:db8::1]:",
        "[2001:db8::1]443",
        "2001:db8::1:443:",
        "fe80::1%eth0",
        "[fe80::1%eth0]:443",
        "for=203.0.113.5",
        "203.0.113.5/24",
        "203.0.113.005",
        "localhost:80",
    ],
)
def test_unparseable_hops_are_an_unknown_client(hop: str) -> None:
    assert client_address("127.0.0.1", [f"198.51.100.1, {hop}"], LOOPBACK_PROXY) is None
    assert client_address("127.0.0.1", [hop], TWO_PROXIES) is None


def test_trusted_hop_with_a_port_is_walked_past() -> None:
    header = "203.0.113.5:5555, 10.0.0.7:80"
    assert client_address("127.0.0.1", [header], TWO_PROXIES) == _ip("203.0.113.5")


def test_several_headers_are_read_as_one_list_in_order() -> None:
    headers = ["198.51.100.1", "203.0.113.5"]
    assert client_address("127.0.0.1", headers, LOOPBACK_PROXY) == _ip("203.0.113.5")


def test_several_headers_walk_through_trusted_hops() -> None:
    headers = ["203.0.113.5, 10.0.0.8", "10.0.0.7"]
    assert client_address("127.0.0.1", headers, TWO_PROXIES) == _ip("203.0.113.5")


def test_mapped_ipv6_peer_counts_as_the_trusted_ipv4_proxy() -> None:
    address = client_address("::ffff:127.0.0.1", ["203.0.113.5"], LOOPBACK_PROXY)
    assert address == _ip("203.0.113.5")


def test_mapped_ipv6_hop_becomes_ipv4() -> None:
    address = client_address("127.0.0.1", ["::ffff:203.0.113.5"], LOOPBACK_PROXY)
    assert address == _ip("203.0.113.5")
    assert isinstance(address, ipaddress.IPv4Address)


def test_ipv6_hop_is_the_client() -> None:
    address = client_address("127.0.0.1", ["2001:db8::5"], LOOPBACK_PROXY)
    assert address == _ip("2001:db8::5")


def test_ipv6_trusted_proxy() -> None:
    proxies = (ipaddress.ip_network("::1/128"),)
    assert client_address("::1", ["203.0.113.5"], proxies) == _ip("203.0.113.5")


def test_unparseable_peer_gives_no_address() -> None:
    assert client_address("testclient", ["203.0.113.5"], LOOPBACK_PROXY) is None
    assert client_address(None, [], LOOPBACK_PROXY) is None


@pytest.mark.parametrize("text", ["10.0.0.0/8\n", "\n10.0.0.0/8", "\r192.0.2.7", "X10.0.0.0/8"])
def test_only_spaces_and_tabs_are_trimmed_from_a_block(text: str) -> None:
    with pytest.raises(ValidationFailed):
        parse_block(text)
    assert parse_block(" \t10.0.0.0/8\t ") == ipaddress.ip_network("10.0.0.0/8")


@pytest.mark.parametrize(
    "text", ["\n[::1]:80", "[::1]:80\v", "X1.2.3.4", "[::1]:x8", "[::1]:99999", "[::1]:"]
)
def test_forwarded_hops_that_are_not_addresses(text: str) -> None:
    from apitokens.domain.network import parse_forwarded_hop

    assert parse_forwarded_hop(text) is None
    assert parse_forwarded_hop(" [::1]:8080\t") == ipaddress.ip_address("::1")


@pytest.mark.parametrize("text", ["192.0.2.7", "2001:db8::1", "::ffff:10.0.0.1"])
def test_the_text_of_an_address_is_its_str_whichever_object_holds_it(text: str) -> None:
    shared = network.parse_address(text)
    own = network.normalize_address(ipaddress.ip_address(text))  # equal, another object
    assert shared is not None and own is not shared
    assert network.address_text(shared) == network.address_text(own) == str(own)
    assert network.address_text(shared) == str(shared)  # again, from the cache
    assert network.address_text(None) is None


def test_the_texts_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(network, "_TEXTS_LIMIT", 8)
    monkeypatch.setattr(network, "_texts", {})
    addresses = [ipaddress.ip_address(f"198.51.100.{n}") for n in range(20)]
    assert [network.address_text(a) for a in addresses] == [str(a) for a in addresses]
    assert 0 < len(network._texts) <= 8
