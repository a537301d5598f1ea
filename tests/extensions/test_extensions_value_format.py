"""Self-describing values: prefix + checksum, the documented regular expression, and
malformed values refused without a database lookup."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from extension_helpers import (
    INVALID,
    broken_checksum,
    create_token,
    documented_checksum,
    key,
    refusal_reasons,
    well_formed,
)

from support.inprocess import InProcessServer
from support.postgres import PostgresCluster
from support.protocols import ApiClientFactory, AppFactory

DOCS = Path(__file__).resolve().parents[2] / "docs" / "extensions.md"


def documented_pattern() -> str:
    """The regular expression that docs/extensions.md gives, in its ```regex block."""
    found = re.search(r"```regex\n(.+?)\n```", DOCS.read_text(encoding="utf-8"), re.S)
    assert found, "docs/extensions.md must show the value pattern in a ```regex block"
    return found.group(1).strip()


def test_values_match_the_documented_pattern_and_checksum(admin: httpx.Client) -> None:
    pattern = re.compile(documented_pattern())
    values = [create_token(admin, f"v{n}")["value"] for n in range(3)]
    rotated = admin.post(f"/api-tokens/{create_token(admin, 'r')['id']}/rotate").json()
    for value in [*values, rotated["value"]]:
        assert pattern.fullmatch(value), value
        assert [m.group(0) for m in pattern.finditer(f"leaked: {value}, oops")] == [value]
        assert value[-6:] == documented_checksum(value[:-6])
    value = values[0]
    for near_miss in (value + "x", "x" + value, value[:-1], "apitok_" + value[6:]):
        assert not pattern.search(near_miss), near_miss


def test_the_prefix_is_configurable(ext_server_factory: AppFactory, api: ApiClientFactory) -> None:
    server = ext_server_factory(env={"APITOKENS_TOKEN_PREFIX": "acme"})
    admin = api(server, server.admin)
    value = create_token(admin, "acme")["value"]
    pattern = documented_pattern().replace("apitk", "acme")
    assert re.fullmatch(pattern, value)
    assert api(server, value).get("/api-tokens/self").status_code == 200
    foreign = "apitk_" + value[len("acme_") :]  # right shape, wrong prefix
    assert api(server, foreign).get("/api-tokens/self").status_code == 401


def test_a_broken_checksum_is_refused_as_malformed_before_any_lookup(
    ext_server: InProcessServer, admin: httpx.Client
) -> None:
    value = create_token(admin, "typo")["value"]
    mistyped = broken_checksum(value)
    for presented in (mistyped, well_formed("Q")):
        response = admin.get("/api-tokens/self", headers=key(presented))
        assert (response.status_code, response.json()["message"]) == (401, INVALID)
    # Only the log tells them apart: the first never reached the database.
    assert refusal_reasons(ext_server.log_text())[-2:] == ["malformed", "unknown"]
    assert value not in ext_server.log_text()
    assert mistyped not in ext_server.log_text()


@pytest.mark.app_backends("postgresql")
def test_malformed_values_are_refused_while_the_database_is_down(
    pg_cluster: PostgresCluster, ext_server: InProcessServer, api: ApiClientFactory
) -> None:
    """The strongest proof that no lookup happens: with PostgreSQL stopped, a malformed
    value still gets its 401, while a well-formed one needs the database (503)."""
    server = ext_server
    admin = api(server, server.admin)
    value = create_token(admin, "outage")["value"]
    pg_cluster.stop()
    try:
        malformed = admin.get("/api-tokens/self", headers=key(broken_checksum(value)))
        assert (malformed.status_code, malformed.json()["message"]) == (401, INVALID)
        assert admin.get("/api-tokens/self", headers=key(well_formed("Q"))).status_code == 503
    finally:
        pg_cluster.start()
