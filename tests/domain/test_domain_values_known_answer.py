"""The value format, frozen: values issued by this version parse, check and hash to fixed
answers forever after (an upgrade that changed the format would lock every holder out),
and issued secrets carry their full 256 bits."""

from __future__ import annotations

import pytest

from apitokens.domain import values
from apitokens.domain.values import ValueCodec, hash_value, redact, value_pattern

# Issued by this version from the secret bytes 00 01 02 ... 1f.
KNOWN_VALUE = "apitk_003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf3wmmnF"
KNOWN_DIGEST = "5e778a252a4806ff0e34ff93c27c52b36852067a0bade2231f5abada405ab843"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def issue_from(monkeypatch: pytest.MonkeyPatch, secret: bytes) -> values.NewValue:
    asked: list[int] = []

    def token_bytes(count: int) -> bytes:
        asked.append(count)
        return secret

    monkeypatch.setattr(values.secrets, "token_bytes", token_bytes)
    issued = ValueCodec("apitk").issue()
    assert asked == [32]  # 256 bits asked of the system's CSPRNG, once
    return issued


def test_a_known_value_parses_checks_and_hashes_to_its_known_digest() -> None:
    codec = ValueCodec("apitk")
    assert codec.prefix == "apitk"
    assert codec.parse(KNOWN_VALUE) == KNOWN_DIGEST
    assert hash_value(KNOWN_VALUE) == KNOWN_DIGEST
    assert ValueCodec("other").parse(KNOWN_VALUE) is None


def test_issuing_from_known_bytes_gives_the_known_value(monkeypatch: pytest.MonkeyPatch) -> None:
    issued = issue_from(monkeypatch, bytes(range(32)))
    assert (issued.value, issued.digest) == (KNOWN_VALUE, KNOWN_DIGEST)
    assert repr(issued) == "NewValue(digest=5e778a25...)"
    assert KNOWN_VALUE not in repr(issued) and KNOWN_VALUE not in str(issued)


@pytest.mark.parametrize(
    ("secret", "value", "digest"),
    [
        (
            b"\x00" * 32,
            "apitk_00000000000000000000000000000000000000000004aYFjR",
            "d13dc592c420b0bec01a083d0ecb3c24a909fc9357f9a276c98292ceca044c99",
        ),
        (
            b"\xff" * 32,
            "apitk_yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp11U3CU1",
            "6837d27f55d4a8c24bc5452b53ca7bdede01da7593881ee9b526f66f558cf79b",
        ),
    ],
)
def test_the_smallest_and_largest_secrets_have_known_values(
    monkeypatch: pytest.MonkeyPatch, secret: bytes, value: str, digest: str
) -> None:
    issued = issue_from(monkeypatch, secret)
    assert (issued.value, issued.digest) == (value, digest)
    assert ValueCodec("apitk").parse(value) == digest


def decode_secret(value: str) -> int:
    number = 0
    for char in value[len("apitk_") : len("apitk_") + 43]:
        number = number * 62 + ALPHABET.index(char)
    return number


def test_issued_secrets_carry_256_random_bits() -> None:
    codec = ValueCodec("apitk")
    secrets_ = [decode_secret(codec.issue().value) for _ in range(64)]
    assert len(set(secrets_)) == 64
    assert all(0 <= secret < 2**256 for secret in secrets_)
    # Each draw is under 2**248 with probability 2**-8: all 64 of them, 2**-512.
    assert max(secret.bit_length() for secret in secrets_) >= 248
    # Every bit position varies across the draws (a stuck bit is lost entropy).
    assert all(len({(secret >> bit) & 1 for secret in secrets_}) == 2 for bit in range(0, 248, 8))


def test_issued_values_use_the_whole_alphabet_and_fixed_lengths() -> None:
    codec = ValueCodec("apitk")
    issued = [codec.issue().value for _ in range(40)]
    assert {len(value) for value in issued} == {6 + 43 + 6}
    body_chars = {char for value in issued for char in value[6:]}
    assert body_chars == set(ALPHABET)


def test_the_checksum_is_six_base62_characters_of_the_crc32_of_the_rest() -> None:
    import zlib

    body = KNOWN_VALUE[:-6]
    number = zlib.crc32(body.encode("ascii"))
    chars = ""
    for _ in range(6):
        number, digit = divmod(number, 62)
        chars = ALPHABET[digit] + chars
    assert KNOWN_VALUE[-6:] == chars


@pytest.mark.parametrize(
    "presented",
    [
        None,
        "",
        KNOWN_VALUE[:-1],  # one short
        KNOWN_VALUE + "0",  # one long
        "apitX" + KNOWN_VALUE[5:],  # another prefix of the same length
        "apitk-" + KNOWN_VALUE[6:],  # the separator
        KNOWN_VALUE[:20] + "-" + KNOWN_VALUE[21:],  # a character outside the alphabet
        KNOWN_VALUE[:20] + "é" + KNOWN_VALUE[21:],
        KNOWN_VALUE[:-1] + ("G" if KNOWN_VALUE[-1] != "G" else "H"),  # checksum off by one
    ],
)
def test_near_misses_of_the_known_value_do_not_parse(presented: str | None) -> None:
    assert ValueCodec("apitk").parse(presented) is None


def test_the_scanner_pattern_and_the_redaction() -> None:
    assert value_pattern("apitk") == r"\bapitk_[0-9A-Za-z]{49}\b"
    assert value_pattern("a.b") == r"\ba\.b_[0-9A-Za-z]{49}\b"
    text = (
        f"key {KNOWN_VALUE}, x_{'b' * 49} ab_{'c' * 48} Ab_{'c' * 49} "
        f"abcdefghijklmnop_{'d' * 49} abcdefghijklmnopq_{'d' * 49} ab9_{'e' * 49}."
    )
    assert redact(text) == (
        f"key <token value>, x_{'b' * 49} ab_{'c' * 48} Ab_{'c' * 49} "
        # A prefix is 2 to 16 characters; redaction goes by the value's own shape wherever
        # it sits, so the 16 characters before `_` are a prefix glued to an `a`.
        f"<token value> a<token value> <token value>."
    )
