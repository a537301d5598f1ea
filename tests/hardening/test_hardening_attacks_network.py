"""Attacks on the address rules: allowedCIDRBlocks bypass, X-Forwarded-For tricks, IPv6,
and brute force from one address (429 with Retry-After, other addresses unaffected).

The rule (docs/decisions.md, "Authentication"): the client is the TCP peer; only when the
peer is a trusted proxy is X-Forwarded-For walked from the right (all such headers, in
order) past trusted hops; ``ip:port`` and ``[ipv6]:port`` hops are parsed, and a hop that
is not an address makes the client unknown (never the proxy). IPv4-mapped IPv6 addresses are IPv4.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hardening_support import (
    INVALID_KEY,
    READ,
    SELF,
    Figures,
    ValueLedger,
    create,
    key,
    refused,
)

from support.inprocess import InProcessServer
from support.protocols import AppFactory, ServerFactory
from support.refusals import UNKNOWN, WRONG_ADDRESS, assert_refused_from

ClientFactory = Callable[..., httpx.Client]
INSIDE = "203.0.113.5"  # inside 203.0.113.0/24
OUTSIDE = "198.51.100.1"


@pytest.fixture
def server(hardened_app: InProcessServer) -> InProcessServer:
    """The app in process; 127.0.0.1 and ::1 are trusted proxies: the tests choose the
    client by XFF."""
    return hardened_app


@pytest.fixture
def admin(server: InProcessServer, client: ClientFactory) -> httpx.Client:
    return client(server, server.admin)


def _fenced(admin: httpx.Client, *blocks: str) -> dict[str, Any]:
    return create(admin, "fenced", [READ], allowedCIDRBlocks=list(blocks))


def _status(client: httpx.Client, value: str, *forwarded: str) -> httpx.Response:
    headers = [("X-API-Key", value), *(("X-Forwarded-For", hop) for hop in forwarded)]
    return client.get(SELF, headers=headers)


# -- spoofing -----------------------------------------------------------------------------


def test_attack_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(
    hardened_app_factory: AppFactory, client: ClientFactory
) -> None:
    """A server behind a proxy at 10.255.0.1: a client at 127.0.0.1 cannot claim to be
    inside the token's blocks by sending X-Forwarded-For itself."""
    server = hardened_app_factory(args=["--trusted-proxies", "10.255.0.1/32"])
    admin = client(server, server.admin)
    value = _fenced(admin, "203.0.113.0/24")["value"]
    answer = _status(admin, value, INSIDE)
    assert_refused_from(server, admin, answer, "127.0.0.1")
    # And the other way round: a token fenced to the real peer is not locked out by junk.
    local = _fenced(admin, "127.0.0.1")["value"]
    assert _status(admin, local, OUTSIDE).status_code == 200
    assert _status(admin, local, "garbage").status_code == 200


def test_attack_leftmost_forwarded_for_hop_is_not_the_client(
    server: InProcessServer, admin: httpx.Client
) -> None:
    """The client writes the left part of the list; the proxy appends the real address."""
    value = _fenced(admin, "203.0.113.0/24")["value"]
    assert _status(admin, value, f"{INSIDE}, {OUTSIDE}").status_code == 403
    assert _status(admin, value, f"{OUTSIDE}, {INSIDE}").status_code == 200


def test_attack_several_forwarded_for_headers_are_one_list(
    server: InProcessServer, admin: httpx.Client
) -> None:
    """A client-sent header before the proxy's own: still read right to left, as one list."""
    value = _fenced(admin, "203.0.113.0/24")["value"]
    assert _status(admin, value, INSIDE, OUTSIDE).status_code == 403
    assert _status(admin, value, OUTSIDE, INSIDE).status_code == 200
    assert _status(admin, value, f"{OUTSIDE}, 10.0.0.1", INSIDE).status_code == 200
    assert _status(admin, value, INSIDE, f"10.0.0.1, {OUTSIDE}").status_code == 403


@pytest.mark.parametrize(
    "forwarded",
    [
        f"{INSIDE}, garbage",
        f"{INSIDE},,",
        f"[{INSIDE}]",
        f"[{INSIDE}]:443",
        f"{INSIDE}:",
        f"{INSIDE}:99999",
        f"{INSIDE}%eth0",
        f"{INSIDE}/24",
        "unknown",
        f"{INSIDE}, unknown",
        "_hidden",
        "for=203.0.113.5",
        f"{INSIDE} 198.51.100.1",
        "203.0.113.005",
        "0x cb.0.113.5",
        "-",
        "::ffff:203.0.113.5, nonsense",
    ],
)
def test_attack_junk_forwarded_for_never_selects_an_address(
    server: InProcessServer, admin: httpx.Client, forwarded: str
) -> None:
    """Junk in the header makes the client unknown: never the address written before it,
    never the proxy's own address (a token fenced to the proxy is refused too), never a
    server error."""
    value = _fenced(admin, "203.0.113.0/24")["value"]
    answer = _status(admin, value, forwarded)
    assert answer.status_code == 403, f"{forwarded!r}: {answer.status_code} {answer.text}"
    assert_refused_from(server, admin, answer, UNKNOWN)
    proxy = _fenced(admin, "127.0.0.1", "::1")["value"]
    assert _status(admin, proxy, forwarded).status_code == 403


@pytest.mark.parametrize(
    "forwarded",
    [
        f"{INSIDE}:1234",
        f"{OUTSIDE}, {INSIDE}:443",
        "[::ffff:203.0.113.5]:8443",
        "[2001:db8::7]:443",
    ],
)
def test_attack_forwarded_for_with_ports_is_read_as_proxies_write_it(
    server: InProcessServer, admin: httpx.Client, forwarded: str
) -> None:
    """``ip:port`` and ``[ipv6]:port`` hops are the client they name, not the proxy."""
    value = _fenced(admin, "203.0.113.0/24", "2001:db8::/32")["value"]
    assert _status(admin, value, forwarded).status_code == 200, forwarded
    proxy = _fenced(admin, "127.0.0.1", "::1")["value"]
    assert _status(admin, proxy, forwarded).status_code == 403, forwarded


def test_attack_ipv4_mapped_ipv6_matches_as_ipv4(
    server: InProcessServer, admin: httpx.Client
) -> None:
    ten = _fenced(admin, "10.0.0.0/8")
    assert _status(admin, ten["value"], "::ffff:10.0.0.1").status_code == 200
    assert _status(admin, ten["value"], "::ffff:a00:1").status_code == 200  # same, in hex
    assert _status(admin, ten["value"], "::ffff:11.0.0.1").status_code == 403
    lan = _fenced(admin, "192.168.0.0/16")
    assert _status(admin, lan["value"], "::ffff:10.0.0.1").status_code == 403
    written_mapped = _fenced(admin, "::ffff:10.0.0.0/104")
    assert written_mapped["allowedCIDRBlocks"] == ["10.0.0.0/8"]
    assert _status(admin, written_mapped["value"], "10.200.0.1").status_code == 200
    v6 = _fenced(admin, "2001:db8::/32")
    assert _status(admin, v6["value"], "::ffff:10.0.0.1").status_code == 403
    assert _status(admin, v6["value"], "2001:db8::10").status_code == 200
    # An IPv4-compatible (not mapped) address is an IPv6 address: no match as 10.0.0.1.
    assert _status(admin, ten["value"], "::10.0.0.1").status_code == 403


def test_attack_ipv6_peer_is_matched_as_ipv6(
    hardened_app_factory: AppFactory, client: ClientFactory, ledger: ValueLedger
) -> None:
    """From the IPv6 loopback peer, no X-Forwarded-For belief: ::1 is not 127.0.0.1."""
    server = hardened_app_factory(args=())
    with server:
        admin = client(server, server.admin, peer="::1")
        v6_only = _fenced(admin, "::1")["value"]
        v4_only = _fenced(admin, "127.0.0.1")["value"]
        assert _status(admin, v6_only).status_code == 200
        assert refused(_status(admin, v4_only), 403) == WRONG_ADDRESS  # the peer, ::1
        assert _status(admin, v4_only, "127.0.0.1").status_code == 403  # XFF not believed
        assert ledger.found_in(server.log_text()) == []


# -- brute force --------------------------------------------------------------------------

LIMIT = 10


def test_attack_many_failures_from_one_address_get_429_others_unaffected(
    hardened_factory: ServerFactory,
    sqlite_database_url: str,
    client: ClientFactory,
    figures: Figures,
) -> None:
    server = hardened_factory(
        sqlite_database_url,
        env={
            "APITOKENS_AUTH_FAILURE_LIMIT": str(LIMIT),
            "APITOKENS_AUTH_FAILURE_WINDOW_SECONDS": "60",
        },
    )
    admin = client(server, server.admin)
    victim_value = create(admin, "victim", [READ])["value"]
    attacker = "198.51.100.66"
    guesses = client(server)
    for attempt in range(LIMIT):
        answer = guesses.get(SELF, headers=key(f"apitk_guess{attempt}", attacker))
        assert refused(answer, 401) == INVALID_KEY, f"attempt {attempt + 1}"
    blocked = guesses.get(SELF, headers=key("apitk_guess-next", attacker))
    refused(blocked, 429)
    retry_after = int(blocked.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    # Once blocked, even the right value from that address waits: a guess that happens to
    # be right must not be told so.
    assert guesses.get(SELF, headers=key(victim_value, attacker)).status_code == 429
    # The failure is per address: a valid caller elsewhere (and a new attacker) is served.
    assert guesses.get(SELF, headers=key(victim_value, "203.0.113.10")).status_code == 200
    assert guesses.get(SELF, headers=key("apitk_x", "198.51.100.67")).status_code == 401

    # While the attacker keeps hammering, a valid caller from another address is answered
    # 200 every time; its latency is recorded (no threshold: a figure, not a bound).
    stop = threading.Event()
    hammering = threading.Event()
    attacker_statuses: list[int] = []

    def hammer() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as attack:
            while not stop.is_set():
                answer = attack.get(SELF, headers=key("apitk_brute", attacker))
                attacker_statuses.append(answer.status_code)
                hammering.set()

    def latencies(count: int) -> list[float]:
        times = []
        for _ in range(count):
            started = time.perf_counter()
            answer = guesses.get(SELF, headers=key(victim_value, "203.0.113.10"))
            times.append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.text
        return times

    quiet = latencies(100)
    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        # Measure only once the attack is under way: on a loaded machine the valid caller's
        # 100 requests could otherwise all be answered before the first attacker's request.
        assert hammering.wait(30), "the attacker threads got no answer"
        busy = latencies(100)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    figures.add(
        "valid caller median latency, quiet / during brute force",
        f"{statistics.median(quiet) * 1000:.2f} ms / {statistics.median(busy) * 1000:.2f} ms "
        f"({len(attacker_statuses)} attacker requests meanwhile)",
    )
    assert attacker_statuses and set(attacker_statuses) == {429}
