"""Token bodies: the hot path's rendering (fixed parts kept per token) gives the same bytes
as rendering the whole body, and never a part of a token as it was before a change."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from apitokens.domain.tokens import Actor, Token
from apitokens.http import render
from apitokens.http.kept import Kept

T0 = datetime(2026, 12, 2, 1, 2, 3, 456789, tzinfo=UTC)
ADMIN = Actor("8d1f4a52-4f0e-4a55-9a51-0d6f3b0c2a11", "api-token")
SYSTEM = Actor("cli", "system")


def plain(token: Token) -> bytes:
    return orjson.dumps(render.token_body(token))


TOKENS = [
    Token("t-1", "plain", (), (), T0, SYSTEM),
    Token(
        "t-2",
        'every field, naïve ✓ "quoted"',
        ("AlertRead", "RuleModify", "billing:read"),  # one permission of an operator's
        ("10.0.0.0/8", "2001:db8::/32"),
        T0,
        ADMIN,
        T0 + timedelta(seconds=1),
        SYSTEM,
        T0 + timedelta(seconds=2),
        T0 + timedelta(milliseconds=3500),
        ("192.0.2.1", "2001:db8::1"),
        T0 + timedelta(days=30),
    ),
    Token("t-3", "used, never changed", ("UserRead",), (), T0, ADMIN, last_used_at=T0),
]


@pytest.mark.parametrize("token", TOKENS, ids=lambda token: token.id)
def test_a_body_is_the_bytes_of_the_whole_body_rendered_at_once(token: Token) -> None:
    assert render.token_json(token) == plain(token)
    assert render.token_json(token) == plain(token)  # again, from the kept parts


@pytest.mark.parametrize("token", TOKENS, ids=lambda token: token.id)
def test_each_use_shows_in_the_body_with_the_same_fixed_parts(token: Token) -> None:
    render.token_json(token)
    for seconds, ips in [(1, ("198.51.100.7",)), (2, ("198.51.100.7", "192.0.2.9")), (3, ())]:
        used = token.with_usage(T0 + timedelta(days=1, seconds=seconds), ips)
        assert used is not token
        body = render.token_json(used)
        assert body == plain(used)
        assert orjson.loads(body)["lastUsedAt"] == render.rfc3339(used.last_used_at)


@pytest.mark.parametrize(
    "change",
    [
        {"name": "renamed"},
        {"permissions": ("AlertRead",)},
        {"allowed_cidr_blocks": ("192.0.2.0/24",)},
        {"updated_at": T0 + timedelta(seconds=9), "updated_by": ADMIN},
        {"rotated_at": T0 + timedelta(seconds=9)},
        {"expires_at": None},
        {"expires_at": T0 + timedelta(days=1)},
        # The same moment as before, as another object: equal, so rendered the same.
        {"created_at": T0 + timedelta(0)},
    ],
)
def test_a_changed_token_is_rendered_as_it_is_now(change: dict[str, object]) -> None:
    before = TOKENS[1]
    render.token_json(before)
    after = dataclasses.replace(before, **change)  # type: ignore[arg-type]
    assert render.token_json(after) == plain(after)
    assert render.token_json(before) == plain(before)  # and back


def test_a_created_or_rotated_body_carries_its_value_once_and_is_not_cached() -> None:
    response = render.token_response(TOKENS[0], "apitk_value")
    assert orjson.loads(response.body) == {**render.token_body(TOKENS[0]), "value": "apitk_value"}
    assert (b"cache-control", b"no-store") in response.raw_headers


def test_headers_are_those_starlette_would_make() -> None:
    response = render.token_response(TOKENS[1])
    body = plain(TOKENS[1])
    assert response.status_code == 200
    assert response.raw_headers == [
        (b"content-length", str(len(body)).encode()),
        (b"content-type", b"application/json"),
    ]


def test_the_kept_parts_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "_fixed", Kept(10))
    tokens = [dataclasses.replace(TOKENS[0], id=f"t-{n}") for n in range(25)]
    for token in tokens:
        assert render.token_json(token) == plain(token)
    assert len(render._fixed) == 10
    assert set(render._fixed) == {token.id for token in tokens[-10:]}


def test_a_time_in_another_zone_is_rendered_in_utc() -> None:
    moment = datetime(2026, 12, 2, 5, 30, 1, 123456, tzinfo=UTC)
    elsewhere = moment.astimezone(timezone(timedelta(hours=-7)))
    assert render.rfc3339(elsewhere) == render.rfc3339(moment) == "2026-12-02T05:30:01.123Z"


@pytest.mark.parametrize("status", [204, 304, 101])
def test_an_answer_without_a_body_has_no_content_length(status: int) -> None:
    answer = render.json_bytes(b"", status)
    assert answer.status_code == status
    assert answer.raw_headers == [(b"content-type", b"application/json")]
    assert render.json_bytes(b"{}").raw_headers == [
        (b"content-length", b"2"),
        (b"content-type", b"application/json"),
    ]
