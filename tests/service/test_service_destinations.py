"""Where a webhook may point, unit by unit: the URL's form, the address rule, the resolver,
and where a send connects (the checked address, with the right Host and TLS name)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest

from apitokens.domain.network import IPAddress
from apitokens.service.destinations import (
    MAX_URL_LENGTH,
    DestinationRefused,
    Destinations,
    Target,
    non_public,
    parse,
    system_resolver,
)

PUBLIC = "93.184.216.34"
PUBLIC6 = "2606:2800:220:1:248:1893:25c8:1946"
V6 = f"[{PUBLIC6}]"
ABSOLUTE = "url: must be an absolute http:// or https:// URL"


class Resolver:
    """Answers every lookup with ``answers``, recording what was asked."""

    def __init__(self, *answers: str) -> None:
        self.answers = [ipaddress.ip_address(answer) for answer in answers]
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> Sequence[IPAddress]:
        self.asked.append((host, port))
        return list(self.answers)


def refused(call: object, *args: object) -> str:
    assert callable(call)
    with pytest.raises(DestinationRefused) as caught:
        call(*args)
    assert caught.value.field == "url"
    return caught.value.message


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (5, ABSOLUTE),
        (None, ABSOLUTE),
        ("", ABSOLUTE),
        ("   ", ABSOLUTE),
        ("ftp://example.com/x", ABSOLUTE),
        ("/relative/path", ABSOLUTE),
        ("http:///no-host", ABSOLUTE),
        ("http://exa mple.com/", "url: must not contain spaces or control characters"),
        ("http://example.com/\x00", "url: must not contain spaces or control characters"),
        ("http://example.com/\x1f", "url: must not contain spaces or control characters"),
        ("http://example.com/\x7f", "url: must not contain spaces or control characters"),
        ("http://example.com:99999/", "url: is not a valid URL: Port out of range 0-65535"),
        ("http://[::1/", "url: is not a valid URL: Invalid IPv6 URL"),
        ("http://example.com:0/", "url: port 0 is not a valid destination"),
        (
            "http://" + "a" * MAX_URL_LENGTH,
            f"url: longer than {MAX_URL_LENGTH} characters",
        ),
    ],
)
def test_a_malformed_url_is_refused_with_the_reason(url: object, message: str) -> None:
    assert refused(parse, url) == message


@pytest.mark.parametrize(
    "url", ["https://user@example.com/", "https://user:pw@example.com/", "https://:pw@example.com/"]
)
def test_credentials_in_the_url_are_refused(url: str) -> None:
    message = refused(parse, url)
    assert message == (
        "url: must not carry credentials (user:password@); they would be shown to every "
        "reader of GET /webhooks. Verify deliveries with the webhook's secret instead"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/" + "a" * (MAX_URL_LENGTH - len("http://example.com/")),
        "http://example.com/!~",
        "https://example.com/caf\u00e9",
        "https://example.com:1/",
        "HTTPS://Example.COM:65535/a?b=c#d",
    ],
)
def test_a_well_formed_url_is_accepted(url: str) -> None:
    parts = parse(url)
    assert parts.geturl() == url.replace("HTTPS:", "https:")
    assert parts.scheme in ("http", "https")


@pytest.mark.parametrize(
    ("address", "refuse"),
    [
        (PUBLIC, False),
        (PUBLIC6, False),
        ("::ffff:93.184.216.34", False),
        ("2002:5db8:d822::", False),  # 6to4 of a public address
        ("64:ff9b::5db8:d822", False),  # NAT64 of a public address
        ("127.0.0.1", True),
        ("10.0.0.1", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),
        ("100.100.100.200", True),
        ("0.0.0.0", True),
        ("224.0.1.1", True),  # global, but multicast
        ("ff0e::1", True),  # global, but multicast
        ("255.255.255.255", True),
        ("::1", True),
        ("::", True),
        ("fe80::1", True),
        ("fd00:ec2::254", True),
        ("::ffff:127.0.0.1", True),
        ("::ffff:10.0.0.1", True),
        ("2002:a00:1::", True),  # 6to4 of 10.0.0.1
        ("64:ff9b::a9fe:a9fe", True),  # NAT64 of 169.254.169.254
        ("64:ff9b::a00:1", True),  # NAT64 of 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", True),  # Teredo client 10.0.0.1
    ],
)
def test_non_public_addresses(address: str, refuse: bool) -> None:
    assert non_public(ipaddress.ip_address(address)) is refuse


def test_the_system_resolver_answers_each_address_once() -> None:
    found = system_resolver("localhost", 80)
    assert ipaddress.ip_address("127.0.0.1") in found
    assert len(found) == len(set(found))
    assert system_resolver("127.0.0.1", 443) == [ipaddress.ip_address("127.0.0.1")]
    assert system_resolver("fe80::1%1", 443) == [ipaddress.ip_address("fe80::1")]


@pytest.mark.parametrize("host", ["nothing.invalid", "a" * 64 + ".example"])
def test_the_system_resolver_refuses_a_host_it_cannot_resolve(host: str) -> None:
    assert refused(system_resolver, host, 80) == f"url: cannot resolve the host {host!r}"


def test_check_resolves_the_host_with_the_port_and_returns_the_url() -> None:
    resolver = Resolver(PUBLIC)
    destinations = Destinations(False, resolver)
    assert destinations.check("https://Hooks.Example.com/x?y=1") == (
        "https://Hooks.Example.com/x?y=1"
    )
    assert destinations.check("http://hooks.example.com/") == "http://hooks.example.com/"
    assert destinations.check("http://hooks.example.com:8080/") == "http://hooks.example.com:8080/"
    assert resolver.asked == [
        ("hooks.example.com", 443),
        ("hooks.example.com", 80),
        ("hooks.example.com", 8080),
    ]


def test_check_refuses_a_host_with_any_non_public_address() -> None:
    destinations = Destinations(False, Resolver(PUBLIC, "10.0.0.1", "::1"))
    assert refused(destinations.check, "https://hooks.example.com/") == (
        "url: the host 'hooks.example.com' resolves to a loopback, private, link-local or "
        "other non-public address (10.0.0.1, ::1); such destinations are refused unless the "
        "server runs with APITOKENS_WEBHOOK_ALLOW_PRIVATE=true"
    )


def test_check_refuses_a_host_without_addresses() -> None:
    destinations = Destinations(False, Resolver())
    assert refused(destinations.check, "https://hooks.example.com/") == (
        "url: cannot resolve the host 'hooks.example.com'"
    )


def test_allowing_private_addresses_resolves_nothing_but_keeps_the_form_rules() -> None:
    resolver = Resolver("10.0.0.1")
    destinations = Destinations(True, resolver)
    assert destinations.allow_private is True
    assert destinations.check("http://10.0.0.1:8080/hook") == "http://10.0.0.1:8080/hook"
    assert destinations.pin("http://internal/hook") == Target("http://internal/hook")
    assert Target("x").headers == {} and Target("x").extensions == {}
    assert refused(destinations.check, "ftp://internal/") == ABSOLUTE
    assert refused(destinations.pin, "ftp://internal/") == ABSOLUTE
    assert resolver.asked == []


def test_the_default_resolver_is_the_system_one() -> None:
    destinations = Destinations(False)
    assert destinations.resolver is system_resolver
    assert refused(destinations.check, "http://localhost:8080/").startswith(
        "url: the host 'localhost' resolves to a loopback"
    )


H = "hooks.example.com"


@pytest.mark.parametrize(
    ("url", "answers", "pinned", "host", "sni"),
    [
        (f"https://{H}/x?y=1", [PUBLIC], f"https://{PUBLIC}:443/x?y=1", H, H),
        (f"http://{H}/x", [PUBLIC], f"http://{PUBLIC}:80/x", H, None),
        (f"http://{H}:8080/x", [PUBLIC], f"http://{PUBLIC}:8080/x", f"{H}:8080", None),
        (f"https://{H}:8443/", [PUBLIC6, PUBLIC], f"https://[{PUBLIC6}]:8443/", f"{H}:8443", H),
        (f"https://{V6}/p", [PUBLIC6], f"https://{V6}:443/p", V6, PUBLIC6),
        (f"http://{V6}:81/p", [PUBLIC6], f"http://{V6}:81/p", f"{V6}:81", None),
        (f"https://{PUBLIC}/", [PUBLIC], f"https://{PUBLIC}:443/", PUBLIC, PUBLIC),
    ],
)  # fmt: skip
def test_pin_connects_to_the_first_checked_address(
    url: str, answers: list[str], pinned: str, host: str, sni: str | None
) -> None:
    target = Destinations(False, Resolver(*answers)).pin(url)
    assert target.url == pinned
    assert target.headers == {"host": host}
    assert target.extensions == ({"sni_hostname": sni} if sni else {})


def test_pin_checks_again_and_refuses_a_changed_answer() -> None:
    answers = [[PUBLIC], ["127.0.0.1"]]

    def flipping(host: str, port: int) -> Sequence[IPAddress]:
        return [ipaddress.ip_address(answer) for answer in answers.pop(0)]

    destinations = Destinations(False, flipping)
    destinations.check("https://hooks.example.com/")
    assert refused(destinations.pin, "https://hooks.example.com/").startswith(
        "url: the host 'hooks.example.com' resolves to a loopback"
    )
