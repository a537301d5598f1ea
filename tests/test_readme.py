"""The README's first command, ``scripts/serve``, run once as a user would: it creates the
database with a first admin token, prints it once with what to do next, and serves."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from support.databases import sqlite_url
from support.processes import CLEAN_EXIT_STATUSES, ServerProcess

ROOT = Path(__file__).resolve().parents[1]
SERVE = ROOT / "scripts" / "serve"
PRINTED_TOKEN = re.compile(r"^ +(apitk_[0-9A-Za-z]{49})$", re.MULTILINE)


class ServeScript(ServerProcess):
    """``scripts/serve --host H --port P --database-url URL`` (it ends in ``exec apitokens
    serve``, so stopping the process stops the server)."""

    def command(self) -> list[str]:
        return [
            str(SERVE),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--database-url",
            self.database_url,
        ]


def test_scripts_serve_bootstraps_prints_the_token_once_and_serves(tmp_path: Path) -> None:
    database = tmp_path / "readme.db"
    server = ServeScript(sqlite_url(database), log_dir=tmp_path / "log")
    with server:
        printed = server.log_text()  # holds the token: never let an assertion show it
        found = PRINTED_TOKEN.findall(printed)
        assert len(found) == 1, "scripts/serve must print the first token exactly once"
        token = found[0]
        example = f"apitokens login --url http://127.0.0.1:{server.port}"
        shows_example = example in printed
        assert shows_example, f"scripts/serve must show what to do next: {example!r}"
        with httpx.Client(base_url=server.url, timeout=10) as client:
            listed = client.get("/api-tokens", headers={"X-API-Key": token})
            assert listed.status_code == 200
            assert [item["name"] for item in listed.json()["results"]] == ["admin"]
            assert client.get("/api-tokens").status_code == 401
    assert server.returncode in CLEAN_EXIT_STATUSES
    assert database.exists()
