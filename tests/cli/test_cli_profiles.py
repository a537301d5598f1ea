"""Profiles (``login --no-verify``, ``logout``, ``profiles``) and where a command connects,
without a server: the executable's entry point run in process (`run_main`), each run with
its own environment and a fresh config directory."""

from __future__ import annotations

import json
from pathlib import Path

from tokens_cli import Result, cli_env, run_main

from apitokens.cli.connection import Profile, Target
from support import free_port

SAVED = "apitk_saved_profile_value"
OTHER = "apitk_other_profile_value"


def test_login_without_verify_saves_profiles_and_profiles_lists_and_picks(tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = home / "config" / "apitokens" / "config.toml"

    def run(*args: str, stdin: str | None = None) -> Result:
        return run_main(list(args), cli_env(None, None, home), stdin)

    first = run("login", "--no-verify", "--url", "http://127.0.0.1:9/", stdin=SAVED + "\n")
    assert (first.returncode, first.stdout) == (0, "")
    assert first.stderr == (
        f"Logged in to http://127.0.0.1:9/; saved as profile 'default' (the default) in {config}.\n"
    )
    work = run("login", "--no-verify", "--profile", "work", "--url", "http://127.0.0.1:10",
               stdin=OTHER)  # fmt: skip
    assert work.returncode == 0, work.stderr
    # The URL is kept without its trailing slash; the newest login is the default.
    assert json.loads(run("profiles", "--json").stdout) == [
        {"name": "default", "url": "http://127.0.0.1:9", "default": False},
        {"name": "work", "url": "http://127.0.0.1:10", "default": True},
    ]

    table = run("profiles")
    assert (table.returncode, table.stderr) == (0, "")
    rows = [row.split() for row in table.stdout.splitlines() if row.strip()]
    assert rows[0] == ["Profile", "URL", "Default"]
    assert rows[2:] == [["default", "http://127.0.0.1:9"], ["work", "http://127.0.0.1:10", "yes"]]
    assert SAVED not in table.stdout and OTHER not in table.stdout

    unknown = run("profiles", "--use", "nope")
    assert (unknown.returncode, unknown.stdout) == (3, "")
    assert unknown.stderr == f"error: no profile 'nope' in {config}\n"
    assert 'default = "work"' in config.read_text()
    picked = run("profiles", "--use", "default", "--json")
    assert picked.stderr == "Profile 'default' is now the default.\n"
    assert [row["name"] for row in json.loads(picked.stdout) if row["default"]] == ["default"]
    assert config.read_text().startswith('default = "default"\n')

    gone = run("logout", "--profile", "nope")
    assert (gone.returncode, gone.stderr) == (3, f"error: no profile 'nope' in {config}\n")
    removed = run("logout")  # the default profile
    assert (removed.returncode, removed.stderr) == (0, "Removed profile 'default'.\n")
    assert config.read_text() == (
        f'\n[profiles."work"]\nurl = "http://127.0.0.1:10"\ntoken = "{OTHER}"\n'
    )
    # No default profile left and no URL given: the default URL, with no token for it.
    bare = run("tokens", "list")
    assert (bare.returncode, bare.stdout) == (2, "")
    assert bare.stderr == (
        "error: no token for http://127.0.0.1:8000: run `apitokens login --url "
        "http://127.0.0.1:8000`, set APITOKENS_TOKEN, or pass --token-stdin\n"
    )


def test_login_refuses_a_bad_profile_name_and_an_empty_token(tmp_path: Path) -> None:
    env = cli_env(None, None, tmp_path / "home")
    config = tmp_path / "home" / "config" / "apitokens" / "config.toml"
    for name in ("bad name", "-dash-first", "x" * 65, "a/b"):
        refused = run_main(["login", "--no-verify", "--profile", name], env, SAVED + "\n")
        assert (refused.returncode, refused.stdout) == (2, "")
        assert refused.stderr == (
            f"error: invalid profile name {name!r}: letters, digits, '_', '.', '-' (up to 64)\n"
        )
    for stdin in ("", "\n", "   \n"):
        empty = run_main(["login", "--no-verify"], env, stdin)
        assert (empty.returncode, empty.stderr) == (
            2,
            "error: no token given (type it at the prompt, or pipe it on stdin)\n",
        )
    assert not config.exists()


def test_a_profiles_token_goes_only_to_the_profiles_url(tmp_path: Path) -> None:
    home = tmp_path / "home"
    closed = f"http://127.0.0.1:{free_port()}"
    env = cli_env(None, None, home)
    saved = run_main(["login", "--no-verify", "--profile", "work", "--url", closed], env, SAVED)
    assert saved.returncode == 0, saved.stderr
    # The profile named, but another URL: its token is not sent there.
    elsewhere = run_main(["tokens", "list", "--profile", "work", "--url", "http://127.0.0.1:9"],
                         env)  # fmt: skip
    assert (elsewhere.returncode, elsewhere.stderr) == (
        2,
        "error: no token for http://127.0.0.1:9: run `apitokens login --url "
        "http://127.0.0.1:9`, set APITOKENS_TOKEN, or pass --token-stdin\n",
    )
    # report-leak needs no token, only the URL: the profile's (here nothing listens).
    leak = run_main(["report-leak", "--profile", "work"], env, "apitk_leaked_value\n")
    assert (leak.returncode, leak.stdout) == (5, "")
    assert leak.stderr.startswith(f"error: POST {closed}/leaked-values failed: ")
    assert "apitk_leaked_value" not in leak.stderr and SAVED not in leak.stderr
    # APITOKENS_URL wins over the profile's URL.
    other = f"http://127.0.0.1:{free_port()}"
    by_env = run_main(["report-leak", "--profile", "work"], {**env, "APITOKENS_URL": other},
                      "apitk_leaked_value\n")  # fmt: skip
    assert by_env.stderr.startswith(f"error: POST {other}/leaked-values failed: ")
    empty = run_main(["report-leak"], env, "\n")
    assert (empty.returncode, empty.stderr) == (
        2,
        "error: no value given (type it at the prompt, or pipe it on stdin)\n",
    )


def test_a_broken_config_file_is_one_line_and_odd_entries_are_skipped(tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = home / "config" / "apitokens" / "config.toml"
    config.parent.mkdir(parents=True)
    env = cli_env(None, None, home)
    for text in ("default = \n", "[profiles.x\n"):
        config.write_text(text)
        broken = run_main(["profiles", "--json"], env)
        assert (broken.returncode, broken.stdout) == (2, "")
        assert broken.stderr == (
            f"error: cannot read {config}: TOMLDecodeError: fix or remove it\n"
        )
    config.write_bytes(b'default = "\xff"\n')
    undecodable = run_main(["profiles"], env)
    assert (undecodable.returncode, undecodable.stderr) == (
        2,
        f"error: cannot read {config}: UnicodeDecodeError: fix or remove it\n",
    )
    # Entries without a URL, or not tables, are no profiles; a default that is not a name
    # is no default.
    config.write_text(
        'default = 3\nprofiles.flat = "x"\n[profiles.nourl]\ntoken = "t"\n'
        '[profiles.ok]\nurl = "http://127.0.0.1:9"\n'
    )
    assert json.loads(run_main(["profiles", "--json"], env).stdout) == [
        {"name": "ok", "url": "http://127.0.0.1:9", "default": False}
    ]
    # A profile saved without a token has none to give.
    tokenless = run_main(["tokens", "list", "--profile", "ok"], env)
    assert tokenless.returncode == 2
    assert tokenless.stderr.startswith("error: no token for http://127.0.0.1:9: ")


def test_profiles_and_targets_never_show_their_token() -> None:
    assert repr(Profile("work", "http://h", SAVED)) == "Profile(name='work', url='http://h')"
    assert repr(Target("http://h", SAVED, "work")) == "Target(url='http://h', profile='work')"
