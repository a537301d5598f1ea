"""``lastUsedAt`` written by several instances only moves forward and nothing is lost.

Each instance coalesces uses in memory and writes them in batches; a write never moves
the stored value back, so instances flushing in any order agree on the newest use.
"""

from __future__ import annotations

import itertools
import random

import pytest
from scale_helpers import SELF, PairFactory, body_of, create_token, stored_last_used, wait_for

from support.postgres import PostgresCluster
from support.processes import CLEAN_EXIT_STATUSES
from support.protocols import ApiClientFactory

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

FAST_FLUSH = {"APITOKENS_LAST_USED_FLUSH_SECONDS": "0.1"}
NO_FLUSH_BEFORE_SHUTDOWN = {"APITOKENS_LAST_USED_FLUSH_SECONDS": "60"}


def _assert_never_back(label: str, seen: list[str]) -> None:
    for earlier, later in itertools.pairwise(seen):
        assert later >= earlier, f"{label}: lastUsedAt moved back from {earlier} to {later}"


def test_last_used_at_only_moves_forward_across_instances(
    start_pair: PairFactory,
    api: ApiClientFactory,
    pg_cluster: PostgresCluster,
    shared_database_url: str,
) -> None:
    pair = start_pair(env_a=FAST_FLUSH, env_b=FAST_FLUSH)
    token = create_token(api(pair.a, pair.admin), "busy")
    users = [api(server, token["value"]) for server in pair.both]
    readers = [api(server, pair.admin) for server in pair.both]
    path = f"/api-tokens/{token['id']}"
    seen: dict[str, list[str]] = {"A": [], "B": []}
    stored: list[str] = []
    uses: list[str] = []
    chooser = random.Random(7)
    for _ in range(60):
        use = chooser.choice(users).get(SELF)
        assert use.status_code == 200
        uses.append(body_of(use)["lastUsedAt"])
        for label, reader in zip(("A", "B"), readers, strict=True):
            seen[label].append(body_of(reader.get(path))["lastUsedAt"] or "")
        stored.append(stored_last_used(pg_cluster, shared_database_url, token["id"]) or "")
    for label, values in seen.items():
        _assert_never_back(f"read through {label}", values)
    _assert_never_back("stored", stored)
    newest = max(uses)

    def newest_stored() -> bool:
        return stored_last_used(pg_cluster, shared_database_url, token["id"]) == newest

    wait_for("the newest use is stored", newest_stored)
    for reader in readers:
        assert body_of(reader.get(path))["lastUsedAt"] == newest


def test_batched_uses_of_every_instance_survive_a_clean_shutdown(
    start_pair: PairFactory, api: ApiClientFactory
) -> None:
    pair = start_pair(env_a=NO_FLUSH_BEFORE_SHUTDOWN, env_b=NO_FLUSH_BEFORE_SHUTDOWN)
    admin = api(pair.a, pair.admin)
    shared = create_token(admin, "shared")
    only_a = [create_token(admin, f"a-{index}") for index in range(3)]
    only_b = [create_token(admin, f"b-{index}") for index in range(3)]
    expected: dict[str, str] = {}
    for server, tokens in ((pair.a, only_a), (pair.b, only_b)):
        for token in tokens:
            expected[token["id"]] = body_of(api(server, token["value"]).get(SELF))["lastUsedAt"]
    on_a = body_of(api(pair.a, shared["value"]).get(SELF))["lastUsedAt"]
    on_b = api(pair.b, shared["value"])
    wait_for("a later millisecond", lambda: body_of(on_b.get(SELF))["lastUsedAt"] > on_a)
    expected[shared["id"]] = body_of(on_b.get(SELF))["lastUsedAt"]

    # B writes the newer use of the shared token first; A's older one must not undo it.
    assert pair.b.stop() in CLEAN_EXIT_STATUSES
    assert pair.a.stop() in CLEAN_EXIT_STATUSES
    pair.a.start()

    reader = api(pair.a, pair.admin)
    for token_id, last_used_at in expected.items():
        assert body_of(reader.get(f"/api-tokens/{token_id}"))["lastUsedAt"] == last_used_at
