"""Token values: how they are made, recognised and hashed.

A value reads ``<prefix>_<43 base62 characters of secret><6 base62 characters of CRC32>``,
e.g. ``apitk_3Zb...``. The prefix lets secret scanners find leaked values; the checksum
lets the service refuse a mistyped or made-up value without touching the database.

Only ``sha256(value)`` is stored. A fast hash is the right choice here because the
value carries 256 bits of randomness: nobody can brute-force it, so a slow password
hash (bcrypt, argon2) would only make every request pay hundreds of microseconds for
no gain. Lookup is by the digest (an indexed column), and the stored digest is then
compared with ``hmac.compare_digest`` so the comparison itself takes constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from dataclasses import dataclass

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHARS = frozenset(_ALPHABET)
SECRET_BYTES = 32
SECRET_CHARS = 43  # ceil(256 / log2(62))
CHECKSUM_CHARS = 6  # 62**6 > 2**32
BODY_CHARS = SECRET_CHARS + CHECKSUM_CHARS


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def _checksum(text: str) -> str:
    return _base62(zlib.crc32(text.encode("ascii")), CHECKSUM_CHARS)


def value_pattern(prefix: str) -> str:
    """The regular expression that matches exactly the values this instance issues."""
    return rf"\b{re.escape(prefix)}_[0-9A-Za-z]{{{BODY_CHARS}}}\b"


_ANY_VALUE = re.compile(rf"[a-z][a-z0-9]{{1,15}}_[0-9A-Za-z]{{{BODY_CHARS}}}")
"""Anything shaped like a value of any prefix an instance may be configured with, wherever it
sits: no word boundary is required on either side, so a value glued to other characters
(``AlertReadapitk_…``, ``x_apitk_…``, ``apitk_…suffix``) is found as well. The match is by the
value's own shape (prefix, ``_``, 49 base62 characters); what it is glued to stays."""


def redact(text: str) -> str:
    """``text`` with everything shaped like a token value replaced by ``<token value>``.

    For messages that quote what a caller sent (an unknown permission name, a bad CIDR
    block, a path): a value pasted into the wrong field must not be repeated back, and so
    end up in a proxy's or a client's log.
    """
    return _ANY_VALUE.sub("<token value>", text)


def hash_value(value: str) -> str:
    """The one-way digest stored in place of a value (hex SHA-256)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class NewValue:
    """A freshly issued value beside its digest. The value leaves the service once."""

    value: str
    digest: str

    def __repr__(self) -> str:
        return f"NewValue(digest={self.digest[:8]}...)"


class ValueCodec:
    """Issues and parses the values of one instance prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._head = f"{prefix}_"
        self._length = len(self._head) + BODY_CHARS

    def issue(self) -> NewValue:
        secret = _base62(int.from_bytes(secrets.token_bytes(SECRET_BYTES), "big"), SECRET_CHARS)
        body = self._head + secret
        value = body + _checksum(body)
        return NewValue(value=value, digest=hash_value(value))

    def digest_if_sized(self, presented: str) -> str | None:
        """The digest of ``presented`` if it is as long as a value, None otherwise.

        Nothing else is checked: this is the key to look up in memory, among digests of
        values that were well-formed when they were stored (a value whose digest is found
        there is one of them); everything else goes through ``parse``.
        """
        if len(presented) != self._length:
            return None
        return hash_value(presented)

    def parse(self, presented: str | None) -> str | None:
        """Return the digest of a well-formed value, or None. Never raises."""
        if not presented or len(presented) != self._length:
            return None
        if not presented.startswith(self._head):
            return None
        if not _CHARS.issuperset(presented[len(self._head) :]):
            return None
        body, checksum = presented[:-CHECKSUM_CHARS], presented[-CHECKSUM_CHARS:]
        if not hmac.compare_digest(_checksum(body), checksum):
            return None
        return hash_value(presented)
