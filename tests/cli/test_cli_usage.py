"""``apitokens tokens`` failures that need no server: usage errors and an unreachable URL."""

from __future__ import annotations

from tokens_cli import Result, cli_env, run_apitokens

from support import free_port

FAKE_TOKEN = "apitk_some_value"


def tokens(*args: str, token: str | None = FAKE_TOKEN) -> Result:
    closed = f"http://127.0.0.1:{free_port()}"
    return run_apitokens(["tokens", *args], cli_env(closed, token))


def test_unreachable_server_exits_1() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    result = run_apitokens(["tokens", "list"], cli_env(closed, FAKE_TOKEN))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(f"error: GET {closed}/api-tokens failed: ")
    assert FAKE_TOKEN not in result.stderr


def test_missing_token_exits_2() -> None:
    result = tokens("list", token=None)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "error: no token: pass --token or set APITOKENS_TOKEN.\n"


def test_malformed_token_exits_2_without_echoing_it() -> None:
    result = tokens("list", token="two words")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "error: token must be a non-empty string of printable ASCII characters\n"
    )


def test_bad_options_exit_2() -> None:
    assert tokens("list", "--no-such-option").returncode == 2
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
