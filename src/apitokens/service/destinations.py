"""Where a webhook may point: public HTTP(S) addresses only, checked twice.

A webhook makes this server send requests where a caller says, so it must not become a
way into the network it runs in (SSRF). A URL is refused when its host resolves to a
loopback, private, link-local (cloud metadata), shared, reserved, multicast or otherwise
non-global address, including such an address embedded in an IPv6 one (IPv4-mapped,
6to4, Teredo, NAT64). Registration checks it; every send checks it again and connects to
the very address it checked (so a DNS answer that changes between the check and the
connection, "DNS rebinding", cannot redirect it). Redirects are never followed.
``APITOKENS_WEBHOOK_ALLOW_PRIVATE=true`` lifts the address rule (receivers on the same
network, tests); the scheme and form rules stay.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from apitokens.domain.errors import ValidationFailed
from apitokens.domain.network import IPAddress

MAX_URL_LENGTH = 2048
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_DEFAULT_PORTS = {"http": 80, "https": 443}

Resolver = Callable[[str, int], Sequence[IPAddress]]


class DestinationRefused(ValidationFailed):
    """A webhook URL this server will not send to (400 at registration)."""

    def __init__(self, reason: str) -> None:
        super().__init__("url", reason)


def system_resolver(host: str, port: int) -> Sequence[IPAddress]:
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise DestinationRefused(f"cannot resolve the host {host!r}") from None
    found: dict[IPAddress, None] = {}
    for _family, _type, _proto, _name, sockaddr in answers:
        found.setdefault(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]), None)
    return list(found)


def non_public(address: IPAddress) -> bool:
    """Whether ``address`` (or an IPv4 address inside it) is not a public unicast one."""
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        embedded = [address.ipv4_mapped, address.sixtofour]
        if address.teredo:
            embedded.extend(address.teredo)
        if address in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        candidates.extend(ip for ip in embedded if ip is not None)
    return any(not ip.is_global or ip.is_multicast for ip in candidates)


@dataclass(frozen=True, slots=True)
class Target:
    """Where to send: ``url`` (with the checked address in place of the host when
    pinned), the ``Host`` header and the TLS server name that go with it."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def parse(url: object) -> SplitResult:
    """The URL's parts; raise DestinationRefused unless it is an absolute http(s) URL."""
    if not isinstance(url, str) or not url.strip():
        raise DestinationRefused("must be an absolute http:// or https:// URL")
    if len(url) > MAX_URL_LENGTH:
        raise DestinationRefused(f"longer than {MAX_URL_LENGTH} characters")
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in url):
        raise DestinationRefused("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise DestinationRefused(f"is not a valid URL: {error}") from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise DestinationRefused("must be an absolute http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused(
            "must not carry credentials (user:password@); they would be shown to every "
            "reader of GET /webhooks. Verify deliveries with the webhook's secret instead"
        )
    if port == 0:
        raise DestinationRefused("port 0 is not a valid destination")
    return parts


class Destinations:
    def __init__(self, allow_private: bool, resolver: Resolver = system_resolver) -> None:
        self.allow_private = allow_private
        self.resolver = resolver

    def check(self, url: object) -> str:
        """The URL, if deliveries may go there; raise DestinationRefused otherwise.

        Resolves the host (blocking): call it off the event loop."""
        parts = parse(url)
        if not self.allow_private:
            self._public_addresses(parts)
        return parts.geturl()

    def pin(self, url: str) -> Target:
        """Where to connect for ``url`` now: the address checked, never a fresh lookup."""
        parts = parse(url)
        if self.allow_private:
            return Target(url)
        address = self._public_addresses(parts)[0]
        host = parts.hostname or ""
        literal = f"[{address}]" if address.version == 6 else str(address)
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
        pinned = urlunsplit(parts._replace(netloc=f"{literal}:{port}"))
        host_header = host if parts.port is None else f"{host}:{parts.port}"
        if ":" in host and not host.startswith("["):
            host_header = f"[{host}]" if parts.port is None else f"[{host}]:{parts.port}"
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        return Target(pinned, {"host": host_header}, extensions)

    def _public_addresses(self, parts: SplitResult) -> Sequence[IPAddress]:
        host = parts.hostname or ""
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
        addresses = self.resolver(host, port)
        if not addresses:
            raise DestinationRefused(f"cannot resolve the host {host!r}")
        refused = [str(address) for address in addresses if non_public(address)]
        if refused:
            raise DestinationRefused(
                f"the host {host!r} resolves to a loopback, private, link-local or other "
                f"non-public address ({', '.join(refused)}); such destinations are refused "
                "unless the server runs with APITOKENS_WEBHOOK_ALLOW_PRIVATE=true"
            )
        return addresses
