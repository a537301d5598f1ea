"""Section 7: ``apitokens serve --workers 2`` against ``--workers 1``.

Both servers run with their default settings (access log and metrics on) on the same
SQLite store; the load is the same wrk as elsewhere. CPU per request is the CPU time of
the whole process tree (the supervising process and every worker) divided by the
requests served. Run alone, without the rest of the benchmark::

    .venv/bin/python -m bench.workers [--tokens 1000] [--duration 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import load, servers, tools
from bench.load import Target
from bench.report import Row, ratio_row, table
from bench.servers import LOOPBACK, ROOT, Server

SELF = "/api-tokens/self"
VERIFY = "/verify?permission=OrganizationAPITokenRead"


def ours(name: str, url: str, logs: Path, workers: int, cpu: int | None) -> Server:
    executable = Path(sys.executable).parent / "apitokens"
    argv = [str(executable), "serve", "--host", LOOPBACK, "--port", "{port}"]
    argv += ["--database-url", url, "--workers", str(workers)]
    return Server(name, argv, logs, cpu=cpu)


def compare_workers(
    url: str,
    store: dict[str, Any],
    logs: Path,
    stack: contextlib.ExitStack,
    timing: tuple[float, float, int],
    cpu: int | None = None,
    wrk_cpu: int | None = None,
) -> list[Row]:
    """Load one- and two-worker servers in turn (``timing``: seconds, warm-up, rounds)."""
    tools.say("7. workers: 2 against 1")
    key = (("X-API-Key", store["admin"]),)
    one = ours("apitokens-workers-1", url, logs, 1, cpu)
    two = ours("apitokens-workers-2", url, logs, 2, cpu)
    ceiling = servers.bare(logs, cpu)
    for server in (one, two, ceiling):
        stack.callback(server.stop)
        server.start()
    seconds, warmup, rounds = timing
    found = load.compare(
        [
            Target("one", one.url + SELF, key, pid=one.pid),
            Target("two", two.url + SELF, key, pid=two.pid),
            Target("one-verify", one.url + VERIFY, key, pid=one.pid),
            Target("two-verify", two.url + VERIFY, key, pid=two.pid),
            Target("bare", ceiling.url + "/constant", pid=ceiling.pid),
        ],
        seconds,
        warmup,
        rounds,
        wrk_cpu,
    )
    for server in (one, two, ceiling):
        server.stop()
    rows = [
        Row("7", f"`GET {SELF}`, `--workers 1`", found["one"]),
        Row("7", f"`GET {SELF}`, `--workers 2`", found["two"]),
        Row("7", "`GET /verify`, `--workers 1`", found["one-verify"]),
        Row("7", "`GET /verify`, `--workers 2`", found["two-verify"]),
        Row("7", "bare Starlette, 1 uvicorn worker (the ceiling)", found["bare"]),
        ratio_row(
            "7", "`/self` req/s: 2 workers ÷ 1", found["two"].rps / found["one"].rps, "", None
        ),
        ratio_row(
            "7",
            "`/verify` req/s: 2 workers ÷ 1",
            found["two-verify"].rps / found["one-verify"].rps,
            "",
            None,
        ),
    ]
    for label, a, b in (
        ("`/self` CPU per request: 2 workers ÷ 1", "two", "one"),
        ("`/verify` CPU per request: 2 workers ÷ 1", "two-verify", "one-verify"),
    ):
        if found[a].cpu_us and found[b].cpu_us:
            rows.append(ratio_row("7", label, found[a].cpu_us / found[b].cpu_us, "", None))
    for label, name in (("`/self`", "one"), ("`/verify`", "one-verify")):
        rows.append(
            ratio_row(
                "7",
                f"{label}, 1 worker ÷ bare Starlette req/s",
                found[name].rps / found["bare"].rps,
                "toward ≥ 0.5",
                found[name].rps / found["bare"].rps >= 0.5,
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__)
    parser.add_argument("--tokens", type=int, default=1_000)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    tools.ensure_wrk()
    facts = tools.machine()  # with the load average at the start
    with contextlib.ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="apitokens-bench-workers-"))
        stack.callback(shutil.rmtree, work, True)
        (work / "logs").mkdir()
        url = f"sqlite:///{work / 'store.db'}"
        done = subprocess.run(
            [sys.executable, "-m", "bench.fill", url, str(args.tokens)],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        store = json.loads(done.stdout)
        rows = compare_workers(
            url, store, work / "logs", stack, (args.duration, args.warmup, args.rounds)
        )
    print("\n".join(f"- {name}: {value}" for name, value in facts.items()))
    print(f"- load average at end: {tools.load_average()}\n")
    print(table(rows))
    for row in rows:
        if row.result is not None:
            print(f"{row.label}: rounds {[round(r) for r in row.result.rounds]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
