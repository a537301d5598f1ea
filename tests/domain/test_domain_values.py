"""Token values: issue, parse (prefix, length, alphabet, checksum), digest, the scanner regex."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from apitokens.domain.values import BODY_CHARS, NewValue, ValueCodec, hash_value, value_pattern

PREFIX = "apitk"


@pytest.fixture
def codec() -> ValueCodec:
    return ValueCodec(PREFIX)


def _swap_char(value: str, index: int) -> str:
    replacement = "A" if value[index] != "A" else "B"
    return value[:index] + replacement + value[index + 1 :]


def test_issued_value_has_prefix_and_fixed_length(codec: ValueCodec) -> None:
    value = codec.issue().value
    assert value.startswith(f"{PREFIX}_")
    assert len(value) == len(PREFIX) + 1 + BODY_CHARS


def test_issued_values_are_distinct(codec: ValueCodec) -> None:
    assert len({codec.issue().value for _ in range(50)}) == 50


def test_parse_round_trips_to_the_issued_digest(codec: ValueCodec) -> None:
    issued = codec.issue()
    assert codec.parse(issued.value) == issued.digest == hash_value(issued.value)


def test_digest_is_hex_sha256_not_the_value(codec: ValueCodec) -> None:
    issued = codec.issue()
    assert re.fullmatch(r"[0-9a-f]{64}", issued.digest)
    assert issued.value not in issued.digest


@pytest.mark.parametrize("index", [len(PREFIX) + 1, len(PREFIX) + 20, -7, -1])
def test_parse_refuses_a_changed_character(codec: ValueCodec, index: int) -> None:
    assert codec.parse(_swap_char(codec.issue().value, index)) is None


def test_parse_refuses_another_prefix_of_the_same_length(codec: ValueCodec) -> None:
    value = codec.issue().value
    assert codec.parse("xpitk" + value[len(PREFIX) :]) is None


def test_parse_refuses_a_value_of_another_instance_prefix(codec: ValueCodec) -> None:
    assert codec.parse(ValueCodec("other").issue().value) is None


@pytest.mark.parametrize("change", [lambda v: v[:-1], lambda v: v + "0", lambda v: v[1:]])
def test_parse_refuses_a_wrong_length(codec: ValueCodec, change: Callable[[str], str]) -> None:
    assert codec.parse(change(codec.issue().value)) is None


@pytest.mark.parametrize("char", ["-", "_", "é", " ", "\x00"])
def test_parse_refuses_characters_outside_base62(codec: ValueCodec, char: str) -> None:
    value = codec.issue().value
    assert codec.parse(value[:10] + char + value[11:]) is None


@pytest.mark.parametrize("presented", [None, "", "apitk_", "Bearer x", "x" * 10_000])
def test_parse_refuses_junk_without_raising(codec: ValueCodec, presented: str | None) -> None:
    assert codec.parse(presented) is None


def test_new_value_repr_hides_the_value(codec: ValueCodec) -> None:
    issued = codec.issue()
    assert issued.value not in repr(issued)
    assert isinstance(issued, NewValue)


def test_value_pattern_matches_issued_values_exactly(codec: ValueCodec) -> None:
    pattern = re.compile(value_pattern(PREFIX))
    for _ in range(20):
        value = codec.issue().value
        assert pattern.fullmatch(value)


def test_value_pattern_finds_a_value_inside_text(codec: ValueCodec) -> None:
    value = codec.issue().value
    found = re.findall(value_pattern(PREFIX), f'export KEY="{value}" # leaked\n')
    assert found == [value]


@pytest.mark.parametrize(
    "text",
    [
        f"{PREFIX}_" + "a" * (BODY_CHARS - 1),
        f"{PREFIX}_" + "a" * (BODY_CHARS + 1),
        f"{PREFIX}_" + "a" * (BODY_CHARS - 1) + "-",
        "other_" + "a" * BODY_CHARS,
        f"x{PREFIX}_" + "a" * BODY_CHARS,
        PREFIX.upper() + "_" + "a" * BODY_CHARS,
        "",
    ],
)
def test_value_pattern_matches_nothing_else(text: str) -> None:
    assert re.search(value_pattern(PREFIX), text) is None


def test_value_pattern_escapes_the_prefix() -> None:
    assert re.search(value_pattern("a.b"), "axb_" + "a" * BODY_CHARS) is None
