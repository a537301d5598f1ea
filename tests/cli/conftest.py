"""Fixtures for the command-line tests: the real ``apitokens tokens`` as a subprocess."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tokens_cli import Result, RunTokens, cli_env, run_apitokens

from apitokens.client import Client


@pytest.fixture
def tokens(server: Any) -> RunTokens:
    """Run ``apitokens tokens ARGS`` against ``server``, as its admin unless ``token=`` says.

    ``token=None`` runs without ``APITOKENS_TOKEN``; ``url=`` points elsewhere.
    """
    default_url: str = server.url
    default_token: str = server.admin

    def run(*args: str, token: str | None = default_token, url: str | None = default_url) -> Result:
        return run_apitokens(["tokens", *args], cli_env(url, token))

    return run


@pytest.fixture
def admin_client(server: Any) -> Iterator[Client]:
    """A `Client` of the same server, to check what the command line did."""
    with Client(server.url, server.admin, retries=0) as client:
        yield client
