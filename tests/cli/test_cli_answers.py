"""What ``apitokens`` does with answers a real server cannot be made to give on demand (a
proxy's 502 page, a body that is not JSON, more than one page of webhooks), with a bare
request, and with failures before any request: the entry point run in process against a
small HTTP server of the test (a stand-in for whatever listens at the URL)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tokens_cli import cli_env, run_main

from support import free_port

TOKEN = "apitk_answers_test_value"
HOOK = {
    "id": "wh-1",
    "url": "https://hooks.example.com/in",
    "events": ["api_token.created"],
    "description": "ops",
    "createdAt": "2030-01-01T00:00:00.000Z",
}

Reply = tuple[int, str, bytes]


class Listener:
    """An HTTP server on a free port answering each path with the reply set for it (404
    otherwise), recording every request as (method, path with query, X-API-Key)."""

    def __init__(self) -> None:
        self.replies: dict[str, Reply] = {}
        self.seen: list[tuple[str, str, str | None]] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                listener.seen.append((self.command, self.path, self.headers.get("X-API-Key")))
                status, content_type, body = listener.replies.get(
                    self.path, (404, "application/json", b'{"message": "no route"}')
                )
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(0.01,),
            daemon=True,  # quick shutdown
        )
        self._thread.start()

    def json(self, path: str, body: object, status: int = 200) -> None:
        self.replies[path] = (status, "application/json", json.dumps(body).encode())

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def test_webhooks_use_the_connection_rules_and_refuse_a_token_argument(
    listener: Listener, tmp_path: Path
) -> None:
    env = cli_env(None, None, tmp_path / "home")
    refused = run_main(["webhooks", "list", "--token", TOKEN, "--url", listener.url], env)
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr.startswith("error: --token is refused: a token on the command line")
    assert TOKEN not in refused.stderr
    missing = run_main(["webhooks", "delete", "wh-1", "--url", listener.url], env)
    assert (missing.returncode, missing.stderr) == (
        2,
        f"error: no token for {listener.url}: run `apitokens login --url {listener.url}`, "
        "set APITOKENS_TOKEN, or pass --token-stdin\n",
    )
    malformed = run_main(["webhooks", "list", "--url", listener.url, "--token-stdin"], env,
                         "two words\n")  # fmt: skip
    assert (malformed.returncode, malformed.stderr) == (
        2,
        "error: token must be a non-empty string of printable ASCII characters\n",
    )
    assert listener.seen == []

    # The saved profile's URL and token, as for `apitokens tokens` (two pages of webhooks).
    saved = run_main(["login", "--no-verify", "--url", listener.url], env, TOKEN + "\n")
    assert saved.returncode == 0, saved.stderr
    second = {**HOOK, "id": "wh-2", "events": [f"event.{n}" for n in range(8)]}
    listener.json("/webhooks?limit=1000", {"results": [HOOK], "next": "c2"})
    listener.json("/webhooks?limit=1000&cursor=c2", {"results": [second], "next": None})
    listed = run_main(["webhooks", "list", "--json"], env)
    assert (listed.returncode, listed.stderr) == (0, "")
    assert json.loads(listed.stdout) == [HOOK, second]
    table = run_main(["webhooks", "list"], env)
    rows = [line.split() for line in table.stdout.splitlines() if line.strip()]
    assert rows[0] == ["ID", "URL", "Events", "Description", "Created"]
    assert rows[2:] == [
        ["wh-1", HOOK["url"], "api_token.created", "ops", HOOK["createdAt"]],
        ["wh-2", HOOK["url"], "all", "ops", HOOK["createdAt"]],  # every event: "all"
    ]
    assert [key for _, _, key in listener.seen] == [TOKEN] * 4


def test_webhook_create_prints_the_secret_once_and_failures_are_one_line(
    listener: Listener, tmp_path: Path
) -> None:
    env = cli_env(listener.url, TOKEN, tmp_path / "home")
    listener.json("/webhooks", {**HOOK, "secret": "whsec_shown_once"}, status=201)
    created = run_main(["webhooks", "create", HOOK["url"], "-e", "api_token.created"], env)
    assert created.returncode == 0, created.stderr
    assert created.stdout == f"Created webhook wh-1 for {HOOK['url']}.\nwhsec_shown_once\n"
    assert created.stderr == "Store this secret now: it will not be shown again.\n"
    assert listener.seen == [("POST", "/webhooks", TOKEN)]

    # A proxy's error page: its status and reason phrase.
    listener.replies["/webhooks/wh-1"] = (502, "text/html", b"<html>bad gateway</html>")
    proxied = run_main(["webhooks", "delete", "wh-1"], env)
    assert (proxied.returncode, proxied.stdout, proxied.stderr) == (
        1,
        "",
        "error: 502: Bad Gateway\n",
    )
    # A success that is not JSON: one line naming what went wrong, exit 1 ...
    listener.replies["/webhooks/wh-1/deliveries?limit=50"] = (200, "text/plain", b"hello")
    odd = run_main(["webhooks", "deliveries", "wh-1"], env)
    assert (odd.returncode, odd.stdout) == (1, "")
    assert odd.stderr == (
        "error: unexpected JSONDecodeError: Expecting value: line 1 column 1 (char 0) "
        "(APITOKENS_DEBUG=1 shows where)\n"
    )
    # ... and with APITOKENS_DEBUG=1, the exception itself (a traceback) for a bug report.
    with pytest.raises(json.JSONDecodeError):
        run_main(["webhooks", "deliveries", "wh-1"], {**env, "APITOKENS_DEBUG": "1"})

    closed = f"http://127.0.0.1:{free_port()}"
    unreachable = run_main(["webhooks", "list", "--url", closed], env)
    assert (unreachable.returncode, unreachable.stdout) == (5, "")
    assert unreachable.stderr == f"error: cannot reach the server at {closed}: ConnectError\n"


def test_tokens_usage_takes_the_groups_connection_options(
    listener: Listener, tmp_path: Path
) -> None:
    env = cli_env(None, None, tmp_path / "home")
    listener.json("/api-tokens/self/usage?days=2", {"results": [
        {"date": "2030-01-01", "requests": 0}, {"date": "2030-01-02", "requests": 4},
    ]})  # fmt: skip
    args = ["tokens", "--url", listener.url, "--token-stdin", "usage", "self", "--days", "2"]
    chart = run_main(args, env, TOKEN + "\n")
    assert (chart.returncode, chart.stderr) == (0, "")
    rows = [line.split() for line in chart.stdout.splitlines() if line.strip()]
    assert rows[2:4] == [["2030-01-01", "0"], ["2030-01-02", "4", "█" * 40]]
    assert rows[-1] == ["4", "requests", "in", "2", "days"]
    assert listener.seen == [("GET", "/api-tokens/self/usage?days=2", TOKEN)]
    refused = run_main(["tokens", "usage", "self", "--token", TOKEN], env)
    assert refused.returncode == 2
    assert TOKEN not in refused.stderr


def test_a_bare_apitokens_shows_the_help_and_exits_2(tmp_path: Path) -> None:
    bare = run_main([], cli_env(None, None, tmp_path / "home"))
    assert (bare.returncode, bare.stdout) == (2, "")
    assert bare.stderr.startswith("Usage: apitokens [OPTIONS] COMMAND [ARGS]...\n")
    assert "Exit codes: 0 success, 1 failed, 2 invalid input" in bare.stderr


def test_bootstrap_refuses_a_bad_name_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'boot.db'}"
    env = cli_env(None, None, tmp_path / "home")
    for name, message in (("", "name: must not be empty"),
                          ("x" * 257, "name: must be at most 256 characters")):  # fmt: skip
        refused = run_main(["bootstrap", "--name", name, "--database-url", url], env)
        assert (refused.returncode, refused.stdout) == (2, "")
        assert refused.stderr == f"database: {url} (--database-url)\nerror: {message}\n"
    with sqlite3.connect(tmp_path / "boot.db") as db:
        assert db.execute("SELECT count(*) FROM tokens").fetchone() == (0,)


def test_backup_failures_name_what_is_wrong_and_write_nothing(tmp_path: Path) -> None:
    env = cli_env(None, None, tmp_path / "home")
    copy = tmp_path / "copy.db"

    def backup(source: str, dest: Path = copy) -> tuple[int, str]:
        done = run_main(["backup", str(dest), "--database-url", f"sqlite:///{source}"], env)
        assert done.stdout == ""
        return done.returncode, done.stderr.splitlines()[-1]

    absent = tmp_path / "absent.db"
    assert backup(str(absent)) == (3, f"error: no SQLite database at {absent}: nothing to back up")
    assert backup(":memory:") == (3, "error: no SQLite database at :memory:: nothing to back up")
    real = tmp_path / "real.db"
    with sqlite3.connect(real) as db:
        db.execute("CREATE TABLE tokens (id TEXT)")
    nowhere = tmp_path / "no-such-dir" / "copy.db"
    assert backup(str(real), nowhere) == (
        2,
        f"error: the directory {nowhere.parent} does not exist",
    )
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database " * 200)
    assert backup(str(junk)) == (1, f"error: cannot back up {junk}: file is not a database")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["junk.db", "real.db"]


def test_bad_lists_of_seconds_are_refused_naming_the_flag_or_variable(tmp_path: Path) -> None:
    env = cli_env(None, None, tmp_path / "home")
    invalid = "error: invalid setting: "
    cases = [
        (["serve", "--expiry-warnings", "1,x"], {},
         "--expiry-warnings: Value error, must be whole seconds, comma-separated"),
        (["serve", "--webhook-retry-seconds", "0"], {},
         "--webhook-retry-seconds: Value error, each value must be between 1 and 31622400 seconds"),
        (["migrate"], {"APITOKENS_WEBHOOK_RETRY_SECONDS": "5,soon"},
         "APITOKENS_WEBHOOK_RETRY_SECONDS: Value error, must be whole seconds, comma-separated"),
    ]  # fmt: skip
    for args, extra, message in cases:
        refused = run_main(args, {**env, **extra})
        assert (refused.returncode, refused.stdout, refused.stderr) == (
            2,
            "",
            f"{invalid}{message}\n",
        ), args
