"""Fixtures of the upstream-compatibility tests (helpers in upstream_support.py).

- ``upstream_client`` (session): the client openapi-python-client generates from
  ``upstream-openapi.json`` beside this file (a copy of the contract's document).
- ``url``: ``memory://`` or a fresh SQLite file (parametrized over both).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from upstream_support import load_generated_client


@pytest.fixture(scope="session")
def upstream_client() -> SimpleNamespace:
    return load_generated_client()


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/apitokens.db"
