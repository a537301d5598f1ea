"""Fixtures for multi-instance tests: two ``apitokens serve`` processes on one database.

``start_pair(env_a=None, env_b=None)`` starts instance A (bootstrapped: ``pair.admin``) and
instance B on one fresh PostgreSQL database. ``shared_database_url`` is that database.
Measured delays are collected in ``measurements`` and printed at the end of the session
("multi-instance measurements").
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Mapping

import pytest
from scale_helpers import CONSISTENCY_BOUND_SECONDS, Measurements, Pair, PairFactory

from support.postgres import PostgresCluster
from support.protocols import ServerFactory

_MEASUREMENTS = pytest.StashKey[Measurements]()

BASE_ENV = {"APITOKENS_AUTH_FAILURE_LIMIT": "1000000", "APITOKENS_ROTATION_LIMIT": "1000000"}
"""These tests try many refused values from one address: keep the failure limiter out."""


def _postgres_requested() -> bool:
    raw = os.environ.get("APITOKENS_TEST_BACKENDS", "")
    names = {part.strip() for part in raw.split(",") if part.strip()}
    return not names or "postgresql" in names


@pytest.fixture
def shared_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL database for several instances."""
    if not _postgres_requested():
        pytest.skip("APITOKENS_TEST_BACKENDS excludes postgresql")
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    cluster.start()  # no-op unless an outage test left it stopped
    name = f"s_{secrets.token_hex(6)}"
    yield cluster.create_database(name)
    cluster.drop_database(name, later=True)  # the servers stop after this teardown


@pytest.fixture
def start_pair(server_factory: ServerFactory, shared_database_url: str) -> PairFactory:
    def start(
        env_a: Mapping[str, str | None] | None = None,
        env_b: Mapping[str, str | None] | None = None,
    ) -> Pair:
        a = server_factory(shared_database_url, env={**BASE_ENV, **(env_a or {})})
        b = server_factory(shared_database_url, env={**BASE_ENV, **(env_b or {})}, bootstrap=False)
        return Pair(a, b, a.admin)

    return start


@pytest.fixture
def measurements(request: pytest.FixtureRequest) -> Measurements:
    """Where tests record measured invalidation delays (printed in the session summary)."""
    stash = request.config.stash
    if _MEASUREMENTS not in stash:
        stash[_MEASUREMENTS] = Measurements()
    return stash[_MEASUREMENTS]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rows = terminalreporter.config.stash.get(_MEASUREMENTS, Measurements()).rows
    if not rows:
        return
    terminalreporter.section("multi-instance measurements")
    terminalreporter.write_line(
        f"consistency bound {CONSISTENCY_BOUND_SECONDS:.1f} s. Invalidation: from the change's "
        "response on one instance to the first refusal on the other; stale = answers that "
        "still accepted the old credential meanwhile."
    )
    by_scenario: dict[str, list[float]] = {}
    stale: dict[str, int] = {}
    for row in rows:
        by_scenario.setdefault(row.scenario, []).append(row.seconds)
        stale[row.scenario] = stale.get(row.scenario, 0) + row.stale_answers
    for scenario, seconds in by_scenario.items():
        ordered = sorted(seconds)
        terminalreporter.write_line(
            f"  {scenario:<52} n={len(ordered):<3} min={ordered[0] * 1000:7.1f} ms  "
            f"median={ordered[len(ordered) // 2] * 1000:7.1f} ms  "
            f"max={ordered[-1] * 1000:7.1f} ms  stale={stale[scenario]}"
        )
