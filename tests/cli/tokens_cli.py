"""Running the real ``apitokens`` executable of this virtualenv, as a user would."""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

CLI_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Result:
    """What one run printed; its repr leaves the output out (it may hold token values)."""

    returncode: int
    stdout: str
    stderr: str

    def __repr__(self) -> str:
        return f"Result(returncode={self.returncode})"


class RunTokens(Protocol):
    def __call__(
        self,
        *args: str,
        token: str | None = ...,
        url: str | None = ...,
        stdin: str | None = ...,
        env: dict[str, str] | None = ...,
    ) -> Result: ...


RunApitokens = RunTokens


def run_apitokens(args: list[str], env: dict[str, str], stdin: str | None = None) -> Result:
    """Run ``<venv>/bin/apitokens ARGS`` with ``stdin`` (a pipe, never a terminal; empty if
    None); never raises on a non-zero exit."""
    executable = Path(sys.executable).parent / "apitokens"
    done = subprocess.run(
        [str(executable), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
        input=stdin if stdin is not None else "",
    )
    return Result(done.returncode, done.stdout, done.stderr)


def _temporary_home() -> Path:
    """A fresh, empty directory, removed when the test process exits."""
    home = Path(tempfile.mkdtemp(prefix="apitokens-home-"))
    atexit.register(shutil.rmtree, home, True)
    return home


def cli_env(url: str | None, token: str | None, home: Path | None = None) -> dict[str, str]:
    """Our environment without ``APITOKENS_*``, plus the URL and token given; the user's
    config and data directories are ``home`` (a fresh, empty temporary one if None)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("APITOKENS_")}
    home = home or _temporary_home()
    env["XDG_CONFIG_HOME"] = str(home / "config")
    env["XDG_DATA_HOME"] = str(home / "data")
    env["COLUMNS"] = "200"  # wide tables: ids are not wrapped in the human-readable output
    if url is not None:
        env["APITOKENS_URL"] = url
    if token is not None:
        env["APITOKENS_TOKEN"] = token
    return env


def run_main(args: list[str], env: dict[str, str], stdin: str | None = None) -> Result:
    """Like `run_apitokens`, but in this process: ``apitokens.cli.main.main`` (the
    executable's entry point) with ``args``, exactly ``env`` as the environment, ``stdin``
    a pipe (not a terminal) and stdout/stderr captured. For the paths that need no server
    (or only its URL), without the cost of a new interpreter for each run."""
    from apitokens.cli.main import main

    saved_env, saved_argv, saved_stdin = dict(os.environ), sys.argv, sys.stdin
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = None
    os.environ.clear()
    os.environ.update(env)
    sys.argv = ["apitokens", *args]
    sys.stdin = io.StringIO(stdin or "")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exit_:
        code = exit_.code
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv, sys.stdin = saved_argv, saved_stdin
    assert isinstance(code, int), f"main() ended without an exit status: {code!r}"
    return Result(code, out.getvalue(), err.getvalue())
