"""Regular expressions (JSON Schema ``pattern``, ECMA 262 syntax) for what the service accepts.

The OpenAPI document must tell the whole truth: a request that satisfies it is accepted.
Each pattern here describes a subset of what the validation code accepts, as close to all
of it as a regular expression can say (tests/api/test_api_patterns.py checks both
directions). Only explicit character ranges are used, never ``\\d``, ``\\s`` or ``\\w``,
whose meaning differs between regex engines.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import date, timedelta

from apitokens.domain.text import FORBIDDEN_CLASS
from apitokens.domain.validation import MAX_NAME_LENGTH
from apitokens.service.pagination import (
    CURSOR_ID_CLASS,
    MAX_CURSOR_ID_LENGTH,
    MAX_CURSOR_MICROS,
    MAX_EVENT_ID,
)

# -- names ---------------------------------------------------------------------------------

WHITE_SPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""Every character ``str.isspace`` (so ``str.strip``) treats as white space, written out:
scanning all of Unicode for them took 75 ms of every process start (a test does the scan)."""


@functools.cache
def name_pattern(max_length: int = MAX_NAME_LENGTH) -> str:
    """What ``validate_name`` accepts: white space around (trimmed away), and between it
    1 to ``max_length`` characters that start and end with non-white-space and contain
    nothing forbidden (domain/text.py)."""
    space = "".join(f"\\u{ord(char):04x}" for char in WHITE_SPACE)
    forbidden = re.compile(f"[{FORBIDDEN_CLASS}]")
    inner_space = "".join(
        f"\\u{ord(char):04x}" for char in WHITE_SPACE if not forbidden.match(char)
    )
    edge = f"[^{FORBIDDEN_CLASS}{inner_space}]"
    inner = f"[^{FORBIDDEN_CLASS}]"
    return f"^[{space}]*{edge}(?:{inner}{{0,{max_length - 2}}}{edge})?[{space}]*$"


# -- permission lists (/verify) ------------------------------------------------------------


def permission_list_pattern(names: Iterable[str]) -> str:
    """One or more catalog names separated by commas, optionally padded by spaces or tabs."""
    one = "[ \\t]*(?:" + "|".join(re.escape(name) for name in names) + ")[ \\t]*"
    return f"^{one}(?:,{one})*$"


# -- CIDR blocks ---------------------------------------------------------------------------

_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IPV4 = f"{_OCTET}(?:\\.{_OCTET}){{3}}"
_HEX = "[0-9a-fA-F]"
_GROUP = f"{_HEX}{{1,4}}"
_IPV6 = (
    "(?:"
    + "|".join(
        [
            f"(?:{_GROUP}:){{7}}{_GROUP}",
            f"(?:{_GROUP}:){{1,7}}:",
            f"(?:{_GROUP}:){{1,6}}:{_GROUP}",
            *(f"(?:{_GROUP}:){{1,{n}}}(?::{_GROUP}){{1,{7 - n}}}" for n in range(5, 0, -1)),
            f":(?:(?::{_GROUP}){{1,7}}|:)",
        ]
    )
    + ")"
)
_LOW_ZERO_BITS = {0: _HEX, 1: "[02468aAcCeE]", 2: "[048cC]", 3: "[08]"}


def _ipv4_block(prefix: int) -> str:
    """Dotted quads with no bit set after ``prefix``, then ``/prefix``."""
    free, bits = divmod(prefix, 8)
    octets = [_OCTET] * free
    if free < 4:
        step = 2 ** (8 - bits)
        octets.append("(?:" + "|".join(str(value) for value in range(0, 256, step)) + ")")
        octets += ["0"] * (3 - free)
    return "\\.".join(octets) + f"/{prefix}"


def _ipv6_group(zero_bits: int) -> str:
    """One group of 1 to 4 hex digits whose lowest ``zero_bits`` bits are zero."""
    if zero_bits == 0:
        return _GROUP
    zeros, rest = divmod(zero_bits, 4)
    lead = 3 - zeros
    head = f"{_HEX}{{0,{lead}}}" if lead else ""
    return f"(?:0|{head}{_LOW_ZERO_BITS[rest]}{'0' * zeros})"


def _ipv6_block(prefix: int) -> str:
    """Groups up to the last one the prefix reaches, then ``::`` (or all 8), ``/prefix``."""
    if prefix == 0:
        return "::/0"
    significant = -(-prefix // 16)
    last = _ipv6_group(16 * significant - prefix)
    groups = f"(?:{_GROUP}:){{{significant - 1}}}" if significant > 1 else ""
    tail = "" if significant == 8 else "::"
    return f"{groups}{last}{tail}/{prefix}"


CIDR_PATTERN = (
    "^[ \\t]*(?:"
    + "|".join(
        [
            f"{_IPV4}(?:/32)?",
            *(_ipv4_block(prefix) for prefix in range(32)),
            f"{_IPV6}(?:/128)?",
            *(_ipv6_block(prefix) for prefix in range(128)),
        ]
    )
    + ")[ \\t]*$"
)
"""A network without host bits (IPv4 or IPv6), or a bare address meaning /32 or /128."""

# -- times ---------------------------------------------------------------------------------

_TIME = (
    "[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?"
    "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_MONTH_DAYS = {
    1: 31,
    2: 28,
    3: 31,
    4: 30,
    5: 31,
    6: 30,
    7: 31,
    8: 31,
    9: 30,
    10: 31,
    11: 30,
    12: 31,
}


def number_range(low: int, high: int, width: int) -> str:
    """A regex for the integers ``low..high`` written with exactly ``width`` digits."""
    if low > high:
        raise ValueError("empty range")
    if width == 1:
        return f"[{low}-{high}]" if low != high else str(low)
    unit = 10 ** (width - 1)
    low_head, low_rest = divmod(low, unit)
    high_head, high_rest = divmod(high, unit)
    if low_head == high_head:
        return f"{low_head}{_group(number_range(low_rest, high_rest, width - 1))}"
    parts = []
    if low_rest:
        parts.append(f"{low_head}{_group(number_range(low_rest, unit - 1, width - 1))}")
        low_head += 1
    if high_rest != unit - 1:
        tail = f"{high_head}{_group(number_range(0, high_rest, width - 1))}"
        high_head -= 1
    else:
        tail = ""
    if low_head <= high_head:
        head = f"[{low_head}-{high_head}]" if low_head != high_head else str(low_head)
        parts.append(f"{head}[0-9]{{{width - 1}}}")
    if tail:
        parts.append(tail)
    return "(?:" + "|".join(parts) + ")"


def _group(regex: str) -> str:
    return regex if regex.startswith("(?:") or len(regex) == 1 else f"(?:{regex})"


def _days(month: int, first: int, last: int) -> str:
    return f"{month:02d}-{number_range(first, last, 2)}"


def date_range(start: date, end: date) -> str:
    """A regex for the ISO dates ``start..end`` (29 February left out: a subset)."""
    parts: list[str] = []
    day = start
    while day <= end:
        if day.month == 1 and day.day == 1 and date(day.year, 12, 31) <= end:
            years_end = end.year if end.month == 12 and end.day == 31 else end.year - 1
            any_day = "|".join(_days(month, 1, _MONTH_DAYS[month]) for month in range(1, 13))
            parts.append(f"{number_range(day.year, years_end, 4)}-(?:{any_day})")
            day = date(years_end + 1, 1, 1) if years_end < 9999 else end + timedelta(days=1)
            continue
        month_last = _MONTH_DAYS[day.month]
        last = min(month_last, end.day if (end.year, end.month) == (day.year, day.month) else 31)
        parts.append(f"{day.year:04d}-{_days(day.month, day.day, min(last, month_last))}")
        if (day.year, day.month) == (end.year, end.month):
            break
        day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return "(?:" + "|".join(parts) + ")"


def expiry_pattern(today: date, maximum: timedelta | None) -> str | None:
    """RFC 3339 times on days every offset keeps in the future and within the maximum.

    Two days of margin on each side: an offset moves a time by less than a day, and the
    document is rebuilt when the date changes. None when no whole day qualifies.
    """
    first = today + timedelta(days=2)
    last = date(9999, 12, 30) if maximum is None else today + maximum - timedelta(days=2)
    if last < first:
        return None
    return f"^{date_range(first, last)}{_TIME}$"


# -- pagination cursors ----------------------------------------------------------------------


def _digits_up_to(high: int) -> str:
    """Decimal numbers ``0..high``, leading zeros allowed, up to ``len(str(high))`` digits."""
    width = len(str(high))
    return f"(?:[0-9]{{1,{width - 1}}}|{number_range(0, high, width)})"


TOKEN_CURSOR_PATTERN = (
    f"^{_digits_up_to(MAX_CURSOR_MICROS)}\\.{CURSOR_ID_CLASS}{{1,{MAX_CURSOR_ID_LENGTH}}}$"
)
EVENT_CURSOR_PATTERN = f"^{_digits_up_to(MAX_EVENT_ID)}$"
