"""Fixtures for the command-line tests: ``apitokens`` against a real server process.

The command runs in this process through the executable's own entry point (``run_main``:
its environment, arguments, stdin a pipe, output captured), which spares a new interpreter
for each of hundreds of runs; tests that are about the executable itself (a terminal, the
installed script) run it as a process with ``run_apitokens``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tokens_cli import Result, RunApitokens, RunTokens, cli_env, run_main

from apitokens.client import Client


@pytest.fixture
def server(sqlite_server: Any) -> Any:
    """The command line's server runs on SQLite only: the command line speaks HTTP and never
    sees the database (the API's behaviour on PostgreSQL is tested in process and by the
    scale-out tests); the commands that take a database URL are tested with both kinds."""
    return sqlite_server


@pytest.fixture
def tokens(server: Any, tmp_path: Path) -> RunTokens:
    """Run ``apitokens tokens ARGS`` against ``server``, as its admin unless ``token=`` says.

    ``token=None`` runs without ``APITOKENS_TOKEN``; ``url=`` points elsewhere; ``stdin=``
    is piped in; ``env=`` adds variables. Config and data live in this test's ``home``.
    """
    default_url: str = server.url
    default_token: str = server.admin

    def run(
        *args: str,
        token: str | None = default_token,
        url: str | None = default_url,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Result:
        return run_main(["tokens", *args], {**cli_env(url, token, home), **(env or {})}, stdin)

    home = tmp_path / "home"
    return run


@pytest.fixture
def apitokens(server: Any, tmp_path: Path) -> RunApitokens:
    """Run ``apitokens ARGS`` (any command) with this test's home and no URL or token set,
    unless ``url=``/``token=`` say; ``stdin=`` is piped in."""

    def run(
        *args: str,
        token: str | None = None,
        url: str | None = None,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Result:
        return run_main(list(args), {**cli_env(url, token, home), **(env or {})}, stdin)

    home = tmp_path / "home"
    return run


@pytest.fixture
def admin_client(server: Any) -> Iterator[Client]:
    """A `Client` of the same server, to check what the command line did."""
    with Client(server.url, server.admin, retries=0) as client:
        yield client
