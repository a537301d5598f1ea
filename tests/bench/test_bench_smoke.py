"""The benchmark (``bench/run``) runs end to end with tiny sizes, so it never rots.

No timing is asserted: the machine is shared. Only that the run completes and that its
table has every row. It runs on SQLite only (``--backends sqlite``): the PostgreSQL rows of
sections 2, 3, 4 and 6 are the same code on another URL, and a second store added 14 s
(60 s against 46 s, idle machine); ``bench/run`` runs both.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROWS = [
    "| 1 | `GET /healthz`, ours (SQLite, 210 tokens) |",
    "| 1 | `GET /api-tokens/self` authenticated, same server |",
    "| 1 | bare Starlette, constant JSON (the ceiling) |",
    "| 1 | auth overhead: `/self` ÷ `/healthz` req/s |",
    "| 1 | auth overhead: `/healthz` ÷ `/self` CPU per request |",
    "| 1 | `/self` ÷ bare Starlette req/s |",
    "| 2 | `GET /api-tokens/self`, SQLite, 210 tokens |",
    "| 2 | `GET /api-tokens/self`, SQLite, 300 tokens |",
    "| 2 | store scale, SQLite: large ÷ small req/s |",
    "| 3 | list, first page of 100, SQLite, 300 tokens |",
    "| 3 | deep page cost ÷ first page cost, SQLite |",
    "| 4 | creates per second (`POST /api-tokens`), SQLite |",
    "| 4 | rotations per second (`POST /api-tokens/{id}/rotate`), SQLite |",
    "| 5 | ours, `GET /api-tokens/self`, SQLite, 300 tokens |",
    "| 5 | peer: DRF view + `HasAPIKey`, SQLite, 300 keys |",
    "| 5 | ours ÷ peer req/s |",
    "| 5 | peer ÷ ours CPU per request |",
    "| 6 | ours, RSS after the load, SQLite, 300 tokens |",
    "| 7 | `GET /api-tokens/self`, `--workers 1` |",
    "| 7 | `GET /api-tokens/self`, `--workers 2` |",
    "| 7 | `/self` req/s: 2 workers ÷ 1 |",
    "| 7 | `/self` CPU per request: 2 workers ÷ 1 |",
    "| 8 | `GET /api-tokens/self`, 210 distinct tokens cycled, SQLite |",
    "| 8 | `GET /verify?permission=AlertRead`, 210 distinct tokens cycled |",
    "| 8 | bare Starlette, constant JSON, same wrk script |",
    "| 8 | `/self`, 210 tokens ÷ bare Starlette req/s |",
    "| 8 | `/verify`, 210 tokens ÷ bare Starlette req/s |",
    "| 9 | `GET /api-tokens/self`, 210 tokens cycled, no writes |",
    "| 9 | the same, while another client writes 20/s (create, update, delete of other tokens) |",
    "| 9 | reads with writes ÷ without, req/s |",
    "| 10 | valid callers: `GET /api-tokens/self`, 210 tokens cycled, quiet |",
    "| 10 | valid callers during a flood of unknown values from many addresses, 32 connections |",
    "| 10 | valid callers during a flood of unknown values from many addresses, 128 connections |",
    "| 10 | valid callers during a flood of unknown values from one address, 128 connections |",
    "| 10 | valid callers' req/s, flood from many addresses, 32 connections ÷ quiet |",
    "| 10 | valid callers' req/s, flood from many addresses, 128 connections ÷ quiet |",
    "| 10 | database lookups of a digest per unknown value, flood from many addresses, 32 "
    "connections |",
    "| 10 | database lookups of a digest per unknown value, flood from many addresses, 128 "
    "connections |",
]


@pytest.mark.slow
def test_the_benchmark_completes_and_prints_every_row(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "bench",
        "--tokens", "300", "--small-tokens", "210",
        "--duration", "1", "--warmup", "0", "--rounds", "1", "--write-seconds", "1",
        "--backends", "sqlite",
        "--save", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=1200, check=False
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    missing = [row for row in ROWS if row not in done.stdout]
    assert not missing, f"rows missing from the table: {missing}\n{done.stdout}"
    assert "## Versions" in done.stdout and "## Machine" in done.stdout
    assert list(tmp_path.glob("*.md")) and list(tmp_path.glob("*.json"))
