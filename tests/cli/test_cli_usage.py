"""``apitokens`` failures that need no server: usage errors, bad settings and database URLs,
an unreachable URL; each is one line on stderr with the exit code of its kind.

The commands run in this process through the executable's entry point (``run_main``);
``serve``, which sets up the process's logging, and the default database's path run as
the installed executable."""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from tokens_cli import Result, cli_env, run_apitokens, run_main

from apitokens.settings import Settings
from support import free_port

FAKE_TOKEN = "apitk_some_value"


def tokens(*args: str, token: str | None = FAKE_TOKEN) -> Result:
    closed = f"http://127.0.0.1:{free_port()}"
    return run_main(["tokens", *args], cli_env(closed, token))


def test_unreachable_server_exits_5() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    result = run_main(["tokens", "list"], cli_env(closed, FAKE_TOKEN))
    assert (result.returncode, result.stdout) == (5, "")
    assert result.stderr.startswith(f"error: GET {closed}/api-tokens failed: ")
    assert result.stderr.endswith(
        "; is the server running, and is --url (or the profile's URL) right?\n"
    )
    assert result.stderr.count("\n") == 1
    assert FAKE_TOKEN not in result.stderr


def test_missing_token_exits_2() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    result = run_main(["tokens", "list"], cli_env(closed, None))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: no token for {closed}: run `apitokens login --url {closed}`, "
        "set APITOKENS_TOKEN, or pass --token-stdin\n"
    )


def test_malformed_token_exits_2_without_echoing_it() -> None:
    result = tokens("list", token="two words")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "error: token must be a non-empty string of printable ASCII characters\n"
    )


def test_bad_options_exit_2() -> None:
    unknown = tokens("list", "--no-such-option")
    assert (unknown.returncode, unknown.stderr) == (
        2,
        "error: No such option: --no-such-option (see 'apitokens tokens list --help')\n",
    )
    assert tokens("create", "--permission", "RuleRead").returncode == 2  # --name is required
    assert tokens("list", "--page-size", "1001").returncode == 2
    bad_time = tokens("create", "--name", "x", "--expires-at", "tomorrow")
    assert bad_time.returncode == 2
    assert "'tomorrow' is not an RFC 3339 time with a zone" in bad_time.stderr
    naive = tokens("create", "--name", "x", "--expires-at", "2030-01-01T00:00:00")
    assert naive.returncode == 2
    both = tokens("update", "self", "--cidr", "10.0.0.0/8", "--clear-cidrs")
    assert both.returncode == 2
    assert "give --cidr or --clear-cidrs, not both" in both.stderr


def test_help_never_shows_the_token() -> None:
    for args in (("--help",), ("list", "--help"), ("create", "--help")):
        result = tokens(*args, token="apitk_from_the_environment")
        assert result.returncode == 0
        assert "apitk_from_the_environment" not in result.stdout + result.stderr
    assert "APITOKENS_TOKEN" in tokens("--help").stdout


def apitokens(*args: str, env: dict[str, str] | None = None, home: Path | None = None) -> Result:
    """``apitokens ARGS`` in this process; ``serve`` (it sets up logging) as a process."""
    run = run_apitokens if args[:1] == ("serve",) else run_main
    return run(list(args), {**cli_env(None, None, home), **(env or {})})


# Runs the executable's entry point in a new interpreter, then writes the names of the
# modules it imported (argv: output file, then the command's arguments).
_IMPORTED = """
import json, sys
out, sys.argv = sys.argv[1], ["apitokens", *sys.argv[2:]]
from apitokens.cli.main import main
try:
    main()
except SystemExit:
    pass
with open(out, "w") as file:
    json.dump(sorted(sys.modules), file)
"""


def imported_by(tmp_path: Path, *args: str, env: dict[str, str]) -> set[str]:
    out = tmp_path / "modules.json"
    subprocess.run(
        [sys.executable, "-c", _IMPORTED, str(out), *args],
        env=env,
        capture_output=True,
        timeout=60,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return set(json.loads(out.read_text()))


def test_commands_import_only_what_they_use(tmp_path: Path) -> None:
    """A command's imports are most of its start (the suite starts hundreds): the help
    needs neither the settings (pydantic), the client (httpx) nor the database (SQLAlchemy);
    a command that talks to a server needs the client, but nothing of the server, and not
    httpx's own command-line client."""
    helped = imported_by(tmp_path, "--help", env=cli_env(None, None))
    assert not {"pydantic", "apitokens.settings", "httpx", "sqlalchemy"} & helped
    closed = f"http://127.0.0.1:{free_port()}"
    listed = imported_by(tmp_path, "tokens", "list", env=cli_env(closed, FAKE_TOKEN))
    assert {"httpx", "apitokens.client"} <= listed
    assert not {"pydantic", "apitokens.settings", "sqlalchemy", "fastapi"} & listed
    assert "httpx._main" not in listed


def test_version() -> None:
    result = apitokens("--version")
    assert (result.returncode, result.stdout) == (0, f"apitokens {version('apitokens')}\n")


def test_serve_has_a_flag_for_every_setting() -> None:
    result = apitokens("serve", "--help", env={"COLUMNS": "300"})
    assert result.returncode == 0
    for name, field in Settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        assert flag in result.stdout, flag
        assert f"APITOKENS_{name.upper()}" in result.stdout
        if field.annotation is bool:
            assert f"--no-{name.replace('_', '-')}" in result.stdout
    assert "--log-format" in result.stdout


def test_bad_settings_are_one_line_exit_2() -> None:
    flag = apitokens("serve", "--port", "99999")
    assert (flag.returncode, flag.stderr) == (
        2,
        "error: invalid setting: --port: Input should be less than or equal to 65535\n",
    )
    env = apitokens("serve", env={"APITOKENS_LOG_FORMAT": "xml"})
    assert env.returncode == 2
    assert env.stderr.startswith("error: invalid setting: APITOKENS_LOG_FORMAT: ")
    assert env.stderr.count("\n") == 1


def test_bootstrap_refuses_a_second_bootstrap_token_unless_forced(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    first = apitokens("bootstrap", "--name", "admin", "--database-url", url)
    assert first.returncode == 0, first.stderr
    assert first.stderr.splitlines()[0] == f"database: {url} (--database-url)"
    second = apitokens("bootstrap", "--name", "admin", "--database-url", url)
    assert (second.returncode, second.stdout) == (4, "")
    lines = second.stderr.splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("error: a bootstrap token exists already in this database: ")
    assert lines[1].endswith("use it (apitokens login), or add --force to create another")
    forced = apitokens("bootstrap", "--name", "second", "--force", "--database-url", url)
    assert forced.returncode == 0
    assert forced.stdout.strip() not in (first.stdout.strip(), "")


def test_the_default_database_does_not_depend_on_the_current_directory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    executable = Path(sys.executable).parent / "apitokens"
    expected = f"database: sqlite:///{home / 'data' / 'apitokens' / 'apitokens.db'} (default)"
    for directory in (tmp_path, Path("/")):
        done = subprocess.run(
            [str(executable), "migrate"],
            env=cli_env(None, None, home),
            cwd=directory,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr.splitlines()[0] == expected
    assert (home / "data" / "apitokens" / "apitokens.db").is_file()


@pytest.mark.parametrize(
    ("url", "code", "message"),
    [
        (
            "sqlite:////no/such/directory/tokens.db",
            2,
            "error: the directory /no/such/directory of the SQLite database does not exist: "
            "create it, or give another --database-url",
        ),
        (
            "nonsense",
            2,
            "error: invalid database URL 'nonsense': expected sqlite:///PATH or "
            "postgresql://USER:PASSWORD@HOST:5432/DATABASE",
        ),
        (
            "nosuchdb://host/x",
            2,
            "error: unsupported database URL scheme 'nosuchdb': expected sqlite:///PATH or "
            "postgresql://USER:PASSWORD@HOST:5432/DATABASE",
        ),
    ],
)
def test_bad_database_urls_are_one_line(url: str, code: int, message: str) -> None:
    for command in ("migrate", "serve", "backup"):
        args = [command, "--database-url", url] + (["/tmp/never"] if command == "backup" else [])
        result = apitokens(*args)
        lines = result.stderr.splitlines()
        # serve logs the database once logging is set up; the others name it on stderr first
        expected = (
            [message] if command == "serve" else [f"database: {url} (--database-url)", message]
        )
        assert (result.returncode, lines) == (code, expected), command


def test_postgres_url_forms_people_paste_are_accepted() -> None:
    port = free_port()
    for scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        result = apitokens("migrate", "--database-url", f"{scheme}://u:secret@127.0.0.1:{port}/x")
        assert result.returncode == 5, result.stderr
        shown = f"postgresql+psycopg://u:***@127.0.0.1:{port}/x"
        lines = result.stderr.splitlines()
        assert lines[0] == f"database: {shown} (--database-url)"
        assert lines[1].startswith(f"error: cannot use the database {shown}: ")
        assert len(lines) == 2
        assert "secret" not in result.stderr
    # `serve` is not here: a database that does not answer yet is waited for, not fatal
    # (tests/service/test_service_startup.py).
    for command in ("bootstrap --name admin", "backup /tmp/never"):
        result = apitokens(
            *command.split(), "--database-url", f"postgres://u:secret@127.0.0.1:{port}/x"
        )
        lines = result.stderr.splitlines()
        expected = 2 if command.startswith("backup") else 5  # backup: pg_dump's job
        assert (result.returncode, len(lines)) == (expected, 2), command
        assert lines[-1].startswith("error: "), command
        assert "secret" not in result.stderr
        assert "Traceback" not in result.stderr


def test_a_missing_postgres_driver_names_the_extra() -> None:
    if importlib.util.find_spec("psycopg2") is not None:
        pytest.skip("psycopg2 is installed here")
    result = apitokens("migrate", "--database-url", "postgresql+psycopg2://u@127.0.0.1/x")
    assert result.returncode == 6
    assert result.stderr.splitlines()[1] == (
        "error: the PostgreSQL driver is not installed (No module named 'psycopg2'): "
        "pip install 'apitokens[postgres]' (in a checkout: .venv/bin/pip install -e "
        "'.[postgres]')"
    )


def test_destructive_commands_refuse_without_a_terminal_or_yes() -> None:
    for args in (("delete", "some-id"), ("rotate", "self")):
        result = tokens(*args)
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == (
            "error: refusing without confirmation: stdin is not a terminal; add --yes\n"
        )


@pytest.mark.parametrize("enabled", [True, False])
def test_a_command_leaves_the_garbage_collector_as_it_found_it(enabled: bool) -> None:
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        done = run_main(["--help"], {"PATH": os.environ.get("PATH", "")})
        assert done.returncode == 0, done.stderr
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
