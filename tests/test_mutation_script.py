"""scripts/mutation (slow, not part of the suite) at least starts: --help and bad arguments."""

from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "mutation"


def test_help_says_what_it_runs_and_prints() -> None:
    done = subprocess.run(
        [str(SCRIPT), "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "src/apitokens/domain/" in done.stdout
    assert "mutation score: N%" in done.stdout
    assert "--jobs N" in done.stdout
    assert done.stderr == ""


def test_an_unknown_argument_is_refused_with_the_usage() -> None:
    done = subprocess.run(
        [str(SCRIPT), "--fast"], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 2
    assert "unknown argument: --fast" in done.stderr
    assert "--jobs N" in done.stderr
    assert done.stdout == ""
