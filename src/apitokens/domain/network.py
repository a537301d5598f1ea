"""Addresses and CIDR blocks: parsing the allowlist and finding the real client address."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Sequence

from apitokens.domain.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_CIDR_BLOCKS = 100


def normalize_address(address: IPAddress) -> IPAddress:
    """IPv4-mapped IPv6 addresses (``::ffff:10.0.0.1``) are treated as the IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_address(text: str | None) -> IPAddress | None:
    """Parse one address; None when it is not an address. Never raises."""
    if not text:
        return None
    return _parse_address(text)


@functools.lru_cache(maxsize=4096)
def _parse_address(text: str) -> IPAddress | None:
    # Cached: every request parses its peer's address, and peers repeat. Addresses are
    # immutable values, so sharing one between requests is safe.
    try:
        return normalize_address(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def address_text(address: IPAddress | None) -> str | None:
    """``str(address)``, None for None.

    Cached: the text of the caller's address is needed on every request (limiter key,
    usage, logs), and formatting an address costs more than looking it up. Looked up by
    the object's identity, not its hash (``ipaddress`` hashes in Python, at a cost near
    that of formatting): the addresses of requests are the shared objects of
    ``parse_address``'s cache. Each entry holds its address, so no other object can take
    its identity while the entry lasts.
    """
    if address is None:
        return None
    entry = _texts.get(id(address))
    if entry is not None and entry[0] is address:
        return entry[1]
    text = str(address)
    if len(_texts) >= _TEXTS_LIMIT:
        _texts.clear()
    _texts[id(address)] = (address, text)
    return text


_TEXTS_LIMIT = 4096
_texts: dict[int, tuple[IPAddress, str]] = {}


def parse_block(text: str, field: str = "allowedCIDRBlocks") -> IPNetwork:
    """Parse one CIDR block; a bare address means /32 (IPv4) or /128 (IPv6).

    Raises ValidationFailed for text that is not a block, and for a block with host bits
    set (suggesting the network form), since ``10.0.0.1/8`` is usually a mistake.
    """
    cleaned = text.strip(" \t")
    try:
        network = ipaddress.ip_network(cleaned, strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(cleaned, strict=False)
        except ValueError:
            raise ValidationFailed(
                field,
                f"{text!r} is not a CIDR block (expected e.g. 10.0.0.0/8, 192.0.2.7 "
                "or 2001:db8::/32)",
            ) from None
        raise ValidationFailed(
            field, f"{text!r} has host bits set; did you mean {loose.with_prefixlen!r}?"
        ) from None
    mapped = network.network_address
    if isinstance(mapped, ipaddress.IPv6Address) and mapped.ipv4_mapped and network.prefixlen >= 96:
        return ipaddress.ip_network(f"{mapped.ipv4_mapped}/{network.prefixlen - 96}")
    return network


def normalize_blocks(blocks: Iterable[str], field: str = "allowedCIDRBlocks") -> tuple[str, ...]:
    """Validate blocks and return them in canonical form, duplicates collapsed, order kept.

    At most ``MAX_CIDR_BLOCKS`` as sent (duplicates count: the document says ``maxItems``).
    """
    given = list(blocks)
    if len(given) > MAX_CIDR_BLOCKS:
        raise ValidationFailed(field, f"at most {MAX_CIDR_BLOCKS} blocks are allowed")
    seen: dict[str, None] = {}
    for text in given:
        seen.setdefault(parse_block(text, field).with_prefixlen, None)
    return tuple(seen)


def networks_of(blocks: Sequence[str]) -> tuple[IPNetwork, ...]:
    """Parse blocks already stored in canonical form."""
    return tuple(ipaddress.ip_network(block) for block in blocks)


def address_allowed(address: IPAddress | None, networks: Sequence[IPNetwork]) -> bool:
    """An empty allowlist allows any address; otherwise the address must be inside a block."""
    if not networks:
        return True
    if address is None:
        return False
    return any(address in network for network in networks)


def client_address(
    peer: str | None,
    forwarded_for: Sequence[str],
    trusted_proxies: Sequence[IPNetwork],
) -> IPAddress | None:
    """The address of the client that sent the request; None when it cannot be known.

    It is the TCP peer, unless the peer is a trusted proxy: then ``X-Forwarded-For`` is
    walked from the right, past further trusted proxies, and the first untrusted hop is the
    client. Hops are read as proxies write them: ``203.0.113.5``, ``2001:db8::1``,
    ``203.0.113.5:1234``, ``[2001:db8::1]`` and ``[2001:db8::1]:443``. A hop that is
    anything else (``unknown``, an obfuscated name, junk, an empty entry) makes the client
    unknown: never the proxy's own address, never an address written before it.
    """
    address = parse_address(peer)
    if address is None or not forwarded_for or not _trusted(address, trusted_proxies):
        return address
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        parsed = parse_forwarded_hop(hop)
        if parsed is None:
            return None
        address = parsed
        if not _trusted(address, trusted_proxies):
            return address
    return address


_PORT = re.compile(r"[0-9]{1,5}")


def parse_forwarded_hop(text: str) -> IPAddress | None:
    """One ``X-Forwarded-For`` entry: an address, with or without a port; None otherwise."""
    hop = text.strip(" \t")
    if hop.startswith("["):  # [IPv6] or [IPv6]:port
        inner, bracket, port = hop[1:].partition("]")
        if not bracket or (port and not (port[0] == ":" and _valid_port(port[1:]))):
            return None
        if ":" not in inner:  # only IPv6 is written in brackets
            return None
        hop = inner
    if hop.count(":") == 1:  # IPv4:port (a bare IPv6 address has at least two colons)
        host, _, port = hop.partition(":")
        if not _valid_port(port) or "." not in host:
            return None
        hop = host
    if "%" in hop or not hop:  # a zone names an interface of the proxy, not a client
        return None
    return parse_address(hop)


def _valid_port(text: str) -> bool:
    return _PORT.fullmatch(text) is not None and int(text) <= 65535


def _trusted(address: IPAddress, trusted_proxies: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in trusted_proxies)


def within(inner: Sequence[IPNetwork], outer: Sequence[IPNetwork]) -> bool:
    """True when every block of ``inner`` lies inside some block of ``outer``.

    An empty ``inner`` means "any address", which lies inside nothing but "any address":
    it is within ``outer`` only when ``outer`` is empty too.
    """
    if not outer:
        return True
    if not inner:
        return False
    return all(any(_subnet(block, limit) for limit in outer) for block in inner)


def _subnet(block: IPNetwork, limit: IPNetwork) -> bool:
    return block.version == limit.version and block.subnet_of(limit)  # type: ignore[arg-type]
