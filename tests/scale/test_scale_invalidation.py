"""A change made through instance A is refused by instance B within the documented bound.

B caches verified credentials; A's write notifies B through PostgreSQL (LISTEN/NOTIFY),
and B also polls the cache epoch as a backstop. Each scenario is measured several times:
from A's response to B's first refusal. The figures are printed in the session summary.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from scale_helpers import (
    CONSISTENCY_BOUND_SECONDS,
    SELF,
    Measurements,
    Pair,
    PairFactory,
    body_of,
    create_token,
    measure_refusal,
    warm,
)

from support.protocols import ApiClientFactory

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TRIALS = 5
SLOW_POLL = {"APITOKENS_CACHE_POLL_SECONDS": "5"}
"""B polls the epoch only every 5 s: a refusal within 1 s can only come from NOTIFY."""


def _change(admin: httpx.Client, kind: str, token: dict[str, Any]) -> int:
    """Change ``token`` through ``admin``; the status the other instance must then answer."""
    path = f"/api-tokens/{token['id']}"
    if kind == "delete":
        response, refused = admin.delete(path), 401
    elif kind == "rotate":
        response, refused = admin.post(f"{path}/rotate"), 401
    else:  # update: fence the token to a network the test client is not in
        fenced = {"name": "fenced", "permissions": token["permissions"]}
        response = admin.post(path, json={**fenced, "allowedCIDRBlocks": ["10.0.0.0/8"]})
        refused = 403
    assert response.status_code in (200, 204), response.text
    return refused


def _measure(
    pair: Pair, api: ApiClientFactory, measurements: Measurements, kind: str, scenario: str
) -> None:
    admin = api(pair.a, pair.admin)
    for trial in range(TRIALS):
        token = create_token(admin, f"{kind}-{trial}")
        on_b = api(pair.b, token["value"])
        warm(on_b)
        refused = _change(admin, kind, token)
        since = time.monotonic()
        seconds, stale = measure_refusal(on_b, since, refused=(refused,))
        measurements.add(scenario, seconds, stale)
        assert seconds <= CONSISTENCY_BOUND_SECONDS, f"{kind} seen by B after {seconds:.3f} s"


KINDS = ("delete", "rotate", "update")


def test_changes_through_a_are_refused_by_b_within_the_bound(
    start_pair: PairFactory, api: ApiClientFactory, measurements: Measurements
) -> None:
    pair = start_pair()
    for kind in KINDS:
        _measure(pair, api, measurements, kind, f"{kind} (notify + 0.25 s poll)")


def test_notification_alone_invalidates_within_the_bound(
    start_pair: PairFactory, api: ApiClientFactory, measurements: Measurements
) -> None:
    pair = start_pair(env_b=SLOW_POLL)
    for kind in KINDS:
        _measure(pair, api, measurements, kind, f"{kind} (notify only, poll 5 s)")


def test_new_values_work_on_the_other_instance_at_once(
    start_pair: PairFactory, api: ApiClientFactory
) -> None:
    pair = start_pair()
    admin = api(pair.a, pair.admin)
    token = create_token(admin, "fresh")
    on_b = api(pair.b, token["value"])
    warm(on_b)  # created on A: accepted by B on its first request
    rotated = admin.post(f"/api-tokens/{token['id']}/rotate")
    assert rotated.status_code == 200, rotated.text
    answer = api(pair.b, body_of(rotated)["value"]).get(SELF)
    assert answer.status_code == 200, answer.text
    assert body_of(answer)["id"] == token["id"]
