"""The document's patterns and the validation code agree (http/patterns.py).

Every string a pattern matches is accepted by the code that validates the field (the
document never calls a refused value valid); for names, where a pattern can say it all,
the converse holds too.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apitokens.domain.errors import ValidationFailed
from apitokens.domain.network import parse_block
from apitokens.domain.permissions import PermissionCatalog
from apitokens.domain.validation import Lifetimes, validate_name
from apitokens.http import patterns
from apitokens.http.schemas import rfc3339
from apitokens.service.pagination import decode_event_cursor, decode_position

FAST = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
NAME = re.compile(patterns.name_pattern())
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def _accepted_name(text: str) -> bool:
    try:
        validate_name(text)
    except ValidationFailed:
        return False
    return True


@FAST
@given(st.from_regex(NAME, fullmatch=True))
def test_every_name_the_pattern_matches_is_accepted(text: str) -> None:
    assert _accepted_name(text), repr(text)


@FAST
@given(st.text(min_size=0, max_size=300) | st.text(alphabet=" \t\n\u202e\x85a\u3000", max_size=9))
def test_names_are_accepted_exactly_when_the_pattern_matches(text: str) -> None:
    assert _accepted_name(text) == bool(NAME.fullmatch(text)), repr(text)


def test_the_white_space_written_out_is_exactly_what_python_strips() -> None:
    scanned = "".join(chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace())
    assert scanned == patterns.WHITE_SPACE
    assert all(f"x{char}".strip() == "x" for char in patterns.WHITE_SPACE)


def test_name_length_is_counted_after_trimming() -> None:
    assert NAME.fullmatch(" " * 10 + "n" * 256 + "\t")
    assert not NAME.fullmatch("n" * 257)
    assert _accepted_name(" " * 10 + "n" * 256 + "\t") and not _accepted_name("n" * 257)


@FAST
@given(st.from_regex(re.compile(patterns.CIDR_PATTERN), fullmatch=True))
def test_every_block_the_pattern_matches_is_accepted(text: str) -> None:
    parse_block(text)


@FAST
@given(
    st.from_regex(re.compile(patterns.expiry_pattern(NOW.date(), None) or ""), fullmatch=True),
    st.from_regex(
        re.compile(patterns.expiry_pattern(NOW.date(), timedelta(days=30)) or ""), fullmatch=True
    ),
)
def test_every_expiry_the_pattern_matches_is_accepted(forever: str, bounded: str) -> None:
    Lifetimes().check(rfc3339(forever), NOW)
    Lifetimes(maximum=timedelta(days=30)).check(rfc3339(bounded), NOW)


def test_a_maximum_lifetime_too_short_for_a_whole_day_leaves_no_pattern() -> None:
    assert patterns.expiry_pattern(NOW.date(), timedelta(days=3)) is None


@FAST
@given(
    st.from_regex(re.compile(patterns.TOKEN_CURSOR_PATTERN), fullmatch=True),
    st.from_regex(re.compile(patterns.EVENT_CURSOR_PATTERN), fullmatch=True),
)
def test_every_cursor_the_patterns_match_is_accepted(token: str, event: str) -> None:
    decode_position(token)
    decode_event_cursor(event)


@FAST
@given(st.data())
def test_every_requirement_the_pattern_matches_names_catalog_permissions(
    data: st.DataObject,
) -> None:
    catalog = PermissionCatalog(["reports:read"])
    text = data.draw(
        st.from_regex(re.compile(patterns.permission_list_pattern(catalog.names)), fullmatch=True)
    )
    names = [part.strip(" \t") for part in text.split(",")]
    assert all(names)
    catalog.normalize(names)
