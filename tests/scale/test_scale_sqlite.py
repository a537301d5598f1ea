"""SQLite under concurrent writers: no "database is locked" 500s, one instance or two.

Write transactions begin with ``BEGIN IMMEDIATE`` and wait on the busy timeout, so writers
queue instead of failing. Two instances on one SQLite file have no NOTIFY: the 0.25 s epoch
poll alone bounds how long one keeps accepting a credential the other changed.
"""

from __future__ import annotations

import time

import pytest
from scale_helpers import (
    CONSISTENCY_BOUND_SECONDS,
    READ,
    SELF,
    Call,
    Measurements,
    Pair,
    alternate,
    assert_no_server_error,
    body_of,
    create_token,
    measure_refusal,
    send_all_at_once,
    warm,
)

from support.protocols import ApiClientFactory, ServerFactory

pytestmark = pytest.mark.slow

ENV = {"APITOKENS_AUTH_FAILURE_LIMIT": "1000000", "APITOKENS_ROTATION_LIMIT": "1000000"}


@pytest.fixture
def sqlite_pair(server_factory: ServerFactory, sqlite_database_url: str) -> Pair:
    a = server_factory(sqlite_database_url, env=ENV)
    b = server_factory(sqlite_database_url, env=ENV, bootstrap=False)
    return Pair(a, b, a.admin)


def _mixed_writes(pair: Pair, api: ApiClientFactory, rotations: int) -> dict[str, object]:
    """Rotations of one token, creates and updates at once; returns the rotated token."""
    admin = api(pair.a, pair.admin)
    target = create_token(admin, "contended")
    others = [create_token(admin, f"other-{index}") for index in range(10)]
    rotate = f"/api-tokens/{target['id']}/rotate"
    calls = [Call(server, pair.admin, "POST", rotate) for server in alternate(pair, rotations)]
    servers = alternate(pair, 10_000)
    for index, token in enumerate(others):
        body = {"name": f"renamed-{index}", "permissions": [READ]}
        calls.append(Call(next(servers), pair.admin, "POST", f"/api-tokens/{token['id']}", body))
        calls.append(
            Call(next(servers), pair.admin, "POST", "/api-tokens", {**body, "name": f"n{index}"})
        )
    responses = send_all_at_once(calls)
    assert_no_server_error(responses)
    assert {r.status_code for r in responses} == {200}
    values = [str(body_of(r)["value"]) for r in responses[:rotations]]
    valid = [v for v in values if api(pair.b, v).get(SELF).status_code == 200]
    assert len(valid) == 1
    return target


def test_one_sqlite_instance_takes_concurrent_writes(
    server_factory: ServerFactory, sqlite_database_url: str, api: ApiClientFactory
) -> None:
    server = server_factory(sqlite_database_url, env=ENV)
    _mixed_writes(Pair(server, server, server.admin), api, rotations=50)


def test_two_instances_on_one_sqlite_file(
    sqlite_pair: Pair, api: ApiClientFactory, measurements: Measurements
) -> None:
    _mixed_writes(sqlite_pair, api, rotations=30)
    admin = api(sqlite_pair.a, sqlite_pair.admin)
    for trial in range(3):
        token = create_token(admin, f"revoked-{trial}")
        on_b = api(sqlite_pair.b, token["value"])
        warm(on_b)
        assert admin.delete(f"/api-tokens/{token['id']}").status_code == 204
        seconds, stale = measure_refusal(on_b, time.monotonic())
        measurements.add("delete, SQLite (0.25 s poll only)", seconds, stale)
        assert seconds <= CONSISTENCY_BOUND_SECONDS
