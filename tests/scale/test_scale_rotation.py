"""Concurrent rotations of one token across two instances: one valid value, no 5xx.

Rotation locks the token's row (``SELECT ... FOR UPDATE``), so rotations of one token run
one after another; the last one to commit holds the only valid value. A deletion takes the
same lock first, so rotating and deleting one token at once cannot deadlock.
"""

from __future__ import annotations

import time

import pytest
from scale_helpers import (
    CONSISTENCY_BOUND_SECONDS,
    SELF,
    Call,
    Pair,
    PairFactory,
    alternate,
    assert_no_server_error,
    body_of,
    create_token,
    measure_refusal,
    self_status,
    send_all_at_once,
    warm,
)

from support.protocols import ApiClientFactory

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROTATIONS = 20
"""Sent at once, alternating between the instances: enough that the row lock is contended
from both sides on every run."""


def _valid_values(pair: Pair, values: list[str]) -> list[str]:
    """The values that both instances accept (and that neither refuses)."""
    valid = []
    for value in values:
        statuses = {self_status(server, value) for server in pair.both}
        assert statuses in ({200}, {401}), f"the instances disagree about a value: {statuses}"
        if statuses == {200}:
            valid.append(value)
    return valid


def _assert_old_value_refused(pair: Pair, api: ApiClientFactory, value: str) -> None:
    """Both instances refuse ``value`` (cached before the rotations) within the bound."""
    since = time.monotonic()
    for server in pair.both:
        seconds, _stale = measure_refusal(api(server, value), since)
        assert seconds <= CONSISTENCY_BOUND_SECONDS


def test_concurrent_rotations_by_id_leave_exactly_one_valid_value(
    start_pair: PairFactory, api: ApiClientFactory
) -> None:
    pair = start_pair()
    token = create_token(api(pair.a, pair.admin), "contended")
    for server in pair.both:
        warm(api(server, token["value"]))
    path = f"/api-tokens/{token['id']}/rotate"

    responses = send_all_at_once(
        [Call(server, pair.admin, "POST", path) for server in alternate(pair, ROTATIONS)]
    )

    assert_no_server_error(responses)
    assert [r.status_code for r in responses] == [200] * ROTATIONS
    bodies = [body_of(r) for r in responses]
    values = [str(body["value"]) for body in bodies]
    assert len(set(values)) == ROTATIONS
    _assert_old_value_refused(pair, api, token["value"])
    valid = _valid_values(pair, values)
    assert len(valid) == 1
    winner = next(body for body in bodies if body["value"] == valid[0])
    assert winner["rotatedAt"] == max(body["rotatedAt"] for body in bodies)
    stored = body_of(api(pair.b, pair.admin).get(f"/api-tokens/{token['id']}"))
    assert stored["rotatedAt"] == winner["rotatedAt"]


def test_concurrent_self_rotations_leave_exactly_one_valid_value(
    start_pair: PairFactory, api: ApiClientFactory
) -> None:
    pair = start_pair()
    token = create_token(api(pair.a, pair.admin), "self-rotating")
    for server in pair.both:
        warm(api(server, token["value"]))

    rotate_self = f"{SELF}/rotate"
    responses = send_all_at_once(
        [Call(server, token["value"], "POST", rotate_self) for server in alternate(pair, ROTATIONS)]
    )

    assert_no_server_error(responses)
    statuses = {r.status_code for r in responses}
    assert statuses <= {200, 401}, statuses  # 401: the value was rotated out first
    values = [str(body_of(r)["value"]) for r in responses if r.status_code == 200]
    assert values
    _assert_old_value_refused(pair, api, token["value"])
    assert len(_valid_values(pair, values)) == 1


def test_rotations_racing_a_deletion_neither_deadlock_nor_fail(
    start_pair: PairFactory, api: ApiClientFactory
) -> None:
    pair = start_pair()
    token = create_token(api(pair.a, pair.admin), "doomed")
    path = f"/api-tokens/{token['id']}"
    calls = [Call(server, pair.admin, "POST", f"{path}/rotate") for server in alternate(pair, 20)]
    calls[10:10] = [
        Call(pair.a, pair.admin, "DELETE", path),
        Call(pair.b, pair.admin, "DELETE", path),
    ]

    responses = send_all_at_once(calls)

    assert_no_server_error(responses)
    deletions = [r.status_code for r in responses if r.request.method == "DELETE"]
    assert sorted(deletions) == [204, 404]
    rotations = [r for r in responses if r.request.method == "POST"]
    assert {r.status_code for r in rotations} <= {200, 404}
    values = [str(body_of(r)["value"]) for r in rotations if r.status_code == 200]
    assert _valid_values(pair, [token["value"], *values]) == []
    for server in pair.both:
        assert api(server, pair.admin).get(path).status_code == 404
