"""Running the real ``apitokens`` executable of this virtualenv, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
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
    def __call__(self, *args: str, token: str | None = ..., url: str | None = ...) -> Result: ...


def run_apitokens(args: list[str], env: dict[str, str]) -> Result:
    """Run ``<venv>/bin/apitokens ARGS`` with no stdin; never raises on a non-zero exit."""
    executable = Path(sys.executable).parent / "apitokens"
    done = subprocess.run(
        [str(executable), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def cli_env(url: str | None, token: str | None) -> dict[str, str]:
    """Our environment without ``APITOKENS_*``, plus the URL and token given."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("APITOKENS_")}
    env["COLUMNS"] = "200"  # wide tables: ids are not wrapped in the human-readable output
    if url is not None:
        env["APITOKENS_URL"] = url
    if token is not None:
        env["APITOKENS_TOKEN"] = token
    return env
