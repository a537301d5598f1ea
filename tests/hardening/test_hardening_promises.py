"""Promises of SECURITY.md that are about the code and the stored data themselves:
digests only in the database, and what reading it gives away."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable

import httpx
import pytest
from hardening_support import INVALID_KEY, MANAGER, SELF, TOKENS, create, key, refused

from apitokens.domain.values import ValueCodec, redact
from support.databases import sqlite_path
from support.inprocess import InProcessServer

ClientFactory = Callable[..., httpx.Client]


@pytest.mark.app_backends("sqlite")
def test_promise_the_database_holds_digests_not_values(
    hardened_app: InProcessServer, client: ClientFactory
) -> None:
    """Each value's row is its SHA-256; no column of any table holds a value; and nothing
    a reader of the database finds there works as a key."""
    server = hardened_app
    admin = client(server, server.admin)
    made = [create(admin, f"stored-{n}", MANAGER) for n in range(3)]
    rotated = admin.post(f"{TOKENS}/{made[0]['id']}/rotate").json()["value"]
    issued = [server.admin, rotated, *(token["value"] for token in made)]

    with sqlite3.connect(sqlite_path(server.database_url)) as db:
        digests = {row[0] for row in db.execute("SELECT digest FROM token_secrets")}
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        cells = [
            str(cell)
            for table in tables
            for row in db.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - our own table names
            for cell in row
            if cell is not None
        ]
    assert {hashlib.sha256(value.encode()).hexdigest() for value in issued} <= digests
    for value in issued:
        assert not any(value in cell for cell in cells)
    # What the reader has: ids, digests, names. None of it authenticates.
    for found in sorted(set(cells))[:300]:
        answer = admin.get(SELF, headers=key(found))
        assert refused(answer, 401) == INVALID_KEY, found[:20]


def test_promise_error_messages_redact_anything_shaped_like_a_value() -> None:
    for prefix in ("apitk", "acme", "x9"):
        value = ValueCodec(prefix).issue().value
        assert redact(f"unknown permission(s) {value}; accepted: ...") == (
            "unknown permission(s) <token value>; accepted: ..."
        )
        assert value not in redact(f"no route /api-tokens/{value}")
    assert redact("apitk_short") == "apitk_short"
