"""The service's own OpenAPI document tells the whole truth (issue 15), checked by the tool.

``schemathesis run`` (the CLI, as anyone would run it) reads ``/openapi.json`` from a real
``apitokens serve`` and runs **every check it has** (``--checks all``) in all four phases
(on SQLite; on PostgreSQL all but the coverage phase, see ``PHASES``): examples, coverage
(boundary values, every undeclared method, missing headers), fuzzing (valid and invalid
input) and stateful sequences that follow the document's links (create, then get,
update, rotate and delete by the returned id). Among the checks:

- no 5xx; every status, content type, header and body as documented;
- a request the document calls valid is accepted (``positive_data_acceptance``), and one
  it calls invalid is refused (``negative_data_rejection``);
- an undeclared method gets 405 whose ``Allow`` lists exactly the declared methods;
- an operation that declares security refuses a request without the key
  (``ignored_auth``); a deleted token stays gone (``use_after_free``).

The server runs with the failed-authentication and leak-report limiters raised (the
fuzzer sends refused keys and leak reports by the thousand from one address), and the
fuzzer gets a fresh administrator token whenever the run rotated, changed or deleted the
one it had (``schemathesis_hooks.py``). The run is bounded by ``--max-examples`` and a
fixed seed; any finding fails the test with schemathesis's own report, which carries a
command reproducing each failure.

Where the time goes (measured, not the store): the PostgreSQL run's 180 cases took as long
as SQLite's 1,084 because it has no coverage phase, whose cases are cheap; a fuzzing case
costs the same on either store, and most of it was schemathesis's own CPU, building
Hypothesis's strategy for the document's 14-KB ``allowedCIDRBlocks`` pattern again and
again. The hooks build each pattern's strategy once (same seed, same requests: compared
request by request), and the first administrator token is made here rather than by a
command in the middle of the run: 15 s to 9 s (PostgreSQL) and 23 s to 17 s (SQLite) alone.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hardening_support import Figures, ValueLedger

from support.inprocess import isolated_settings
from support.processes import RunningServer, apitokens_executable
from support.protocols import ServerFactory

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
SEED = 20250115
# Test cases per operation and phase. 17 operations (7 of them /verify, one per method a
# proxy forwards). The coverage phase's boundary cases do not depend on this number and
# are most of the run: 1,084 cases in 23 s on SQLite, 926 in 19 s on PostgreSQL (20 and 8
# gave 1,326 and 1,032 cases, in 29 s each), on 2 shared cores.
MAX_EXAMPLES = {"sqlite": 10, "postgresql": 5}
# The coverage phase checks the document against the HTTP layer, which is the same code on
# either store: it runs on SQLite. On PostgreSQL the fuzzer's generated values and the
# stateful sequences reach the other store (its text, its constraints, its transactions).
PHASES = {
    "sqlite": "examples,coverage,fuzzing,stateful",
    "postgresql": "examples,fuzzing,stateful",
}
TIMEOUT_SECONDS = 240


def schemathesis_command(
    url: str, max_examples: int, seed: int, phases: str = PHASES["sqlite"]
) -> list[str]:
    return [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        phases,
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "10",
        "--no-color",
    ]


def run_schemathesis(
    server: RunningServer,
    directory: Path,
    max_examples: int,
    seed: int,
    phases: str = PHASES["sqlite"],
) -> subprocess.CompletedProcess[str]:
    """Run the CLI against ``server`` with the fresh-admin hooks; return its result."""
    from apitokens.bootstrap import create_admin_token

    settings = isolated_settings(server.database_url)  # only the database matters here
    first = create_admin_token(settings, "schemathesis-admin-1", force=True).value
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
        "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
        "APITOKENS_ST_URL": server.url,
        "APITOKENS_ST_DATABASE_URL": server.database_url,
        "APITOKENS_ST_EXECUTABLE": str(apitokens_executable()),
        "APITOKENS_ST_VALUES": str(directory / "values"),
        "APITOKENS_ST_FIRST": first,
    }
    return subprocess.run(
        schemathesis_command(server.url, max_examples, seed, phases),
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


FUZZ_ENV = {
    # Whether a webhook URL is accepted depends on what its host resolves to, which no
    # schema can say: the fuzzed server accepts any well-formed URL (no lookup), and its
    # sender never runs during the test, so nothing is ever sent anywhere.
    "APITOKENS_WEBHOOK_ALLOW_PRIVATE": "true",
    "APITOKENS_WEBHOOK_POLL_SECONDS": "3600",
}


@pytest.fixture
def fuzzed_server(hardened_factory: ServerFactory, database_url: str) -> RunningServer:
    return hardened_factory(database_url, env=FUZZ_ENV)


def test_schemathesis_every_check_finds_nothing_in_the_services_own_document(
    fuzzed_server: RunningServer,
    backend: str,
    tmp_path: Path,
    ledger: ValueLedger,
    figures: Figures,
) -> None:
    started = time.monotonic()
    done = run_schemathesis(fuzzed_server, tmp_path, MAX_EXAMPLES[backend], SEED, PHASES[backend])
    elapsed = time.monotonic() - started
    values = (tmp_path / "values").read_text().split() if (tmp_path / "values").exists() else []
    for value in values:
        ledger.add(value)  # the fixture checks the server's log for every one of them
    output = done.stdout + done.stderr
    cases = re.search(r"(\d+) generated", output)
    figures.add(
        f"schemathesis --checks all ({backend})",
        f"{cases.group(1) if cases else '?'} test cases in {elapsed:.1f} s, "
        f"{len(values)} admin tokens used, exit status {done.returncode}",
    )
    assert done.returncode == 0, output[-20000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    assert selected is not None and selected.group(1) == selected.group(2), output[-3000:]
    assert f"Tested: {selected.group(1)}" in output, output[-3000:]  # every operation ran
    assert "No issues found" in output or " passed" in output, output[-3000:]
