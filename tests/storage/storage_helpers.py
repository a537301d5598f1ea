"""Helpers for storage tests."""

from __future__ import annotations

import os

import pytest

HANG_GUARD_SECONDS = 30.0
"""How long a wait for something that must happen may take before the test fails. Not a
performance threshold: only there so that a bug cannot hang the suite."""


def _postgres_requested() -> bool:
    raw = os.environ.get("APITOKENS_TEST_BACKENDS", "")
    names = {part.strip() for part in raw.split(",") if part.strip()}
    return not names or "postgresql" in names


on_postgresql_only = pytest.mark.parametrize(
    "backend",
    [
        pytest.param(
            "postgresql",
            id="postgresql",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(
                    not _postgres_requested(), reason="APITOKENS_TEST_BACKENDS excludes postgresql"
                ),
            ],
        )
    ],
    indirect=True,
)
"""For tests of PostgreSQL-only behaviour: the ``backend`` fixture is PostgreSQL alone."""
