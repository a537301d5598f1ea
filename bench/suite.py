"""The benchmark run: tools, a PostgreSQL cluster, the sections, the report."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import load, tools
from bench.options import Options
from bench.report import Row, settings_block, table
from bench.sections import Suite
from bench.servers import ROOT


def run(options: Options) -> str:
    """Run every section; return the report (settings, versions, table)."""
    started = time.monotonic()
    load.PACE_MS = options.pace
    machine = tools.machine()
    tools.ensure_wrk()
    peer_python = tools.ensure_peer() if "5" in options.sections else None
    with contextlib.ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="apitokens-bench-"))
        stack.callback(shutil.rmtree, work, True)
        (work / "logs").mkdir()
        postgres = _postgres(stack) if "postgresql" in options.backends else None
        suite = Suite(options, work, stack, peer_python, postgres)
        rows = suite.run_all()
        versions = tools.versions(peer_python, suite.postgres_version)
    facts = _facts(options, time.monotonic() - started)
    facts["load average at end (1, 5, 15 min)"] = tools.load_average()
    facts["fill times (s)"] = ", ".join(f"{k}: {v:g}" for k, v in suite.fill_seconds.items())
    text = "\n\n".join(
        [
            "## Run",
            settings_block(facts),
            "## Machine",
            settings_block(machine),
            "## Versions",
            settings_block(versions),
            "## Results",
            table(rows),
        ]
    )
    if options.save:
        _save(Path(options.save), text, rows)
    return text


def _postgres(stack: contextlib.ExitStack) -> Any:
    """A throwaway PostgreSQL cluster: the one the test suite uses (tests/support)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from support.postgres import PostgresCluster

    cluster = PostgresCluster()
    stack.callback(cluster.close)
    tools.say("starting a temporary PostgreSQL cluster")
    return cluster.start()


def _facts(options: Options, seconds: float) -> dict[str, str]:
    return {
        "command": "bench/run " + " ".join(sys.argv[1:]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(),
        "load tool": f"{load.wrk_version()}: {load.THREADS} thread, {load.CONNECTIONS} "
        f"connections, `--latency`, keep-alive, loopback",
        "durations": f"{options.warmup:g} s warm-up per target, then {options.rounds} "
        f"interleaved rounds of {options.duration:g} s (best round kept); writes: "
        f"{options.write_seconds:g} s each",
        "servers": "uvicorn, 1 worker each, uvloop + httptools, same host; ours via "
        "`apitokens serve` with its default settings (access log on)",
        "CPU pinning": "servers on CPU 1, wrk on CPU 0" if options.pin else "none",
        **(
            {"pace": f"{options.pace} ms between a connection's requests: not a measurement"}
            if options.pace
            else {}
        ),
        "run time": f"{seconds:.0f} s",
    }


def _commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "src"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return done.stdout.strip() + (" (src modified)" if dirty else "")


def _save(folder: Path, text: str, rows: list[Row]) -> None:
    folder = folder if folder.is_absolute() else ROOT / folder
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (folder / f"{stamp}.md").write_text(text + "\n", encoding="utf-8")
    data = [
        {
            "section": row.section,
            "label": row.label,
            "figure": row.figure,
            "target": row.target,
            "met": row.met,
            "result": row.result.as_dict() if row.result else None,
        }
        for row in rows
    ]
    (folder / f"{stamp}.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tools.say(f"saved {folder / stamp}.md and .json")
