"""Sections 8-10: many distinct tokens, reads beside writes, and a flood of unknown values.

All three load the small SQLite store, whose every token value the fill returned, with
``GET /api-tokens/self`` cycling over all of them (a wrk Lua script picks the next
``X-API-Key`` per request), so the credential cache holds as many entries as there are
clients rather than one:

8. against the bare Starlette app on the same uvicorn settings (loaded with the same
   script, whose header it ignores, so the load generator's work is the same);
9. quiet, and while another client (``bench.writer``, a separate process) creates,
   updates and deletes *other* tokens at 20 writes a second;
10. quiet, and during a flood of distinct well-formed unknown values (``bench.flood``)
    from many source addresses in 127.0.0.0/8, then from one; from ``/metrics`` before
    and after: the unknown-value refusals and the database lookups of a digest
    (``apitokens_credential_lookups_total``).

Run alone, without the rest of the benchmark (``--workers``: section 7 too, first)::

    .venv/bin/python -m bench.contention [--tokens 1000] [--duration 5] [--rounds 3] [--workers]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from bench import load, servers, tools
from bench.companion import Companion
from bench.load import Result, Target
from bench.report import Row, ratio_row, table
from bench.servers import Server
from bench.workers import compare_workers

if TYPE_CHECKING:
    from bench.sections import Suite

SELF = "/api-tokens/self"
VERIFY = "/verify?permission=AlertRead"  # every token of the fill holds AlertRead
WRITE_RATE = 20.0
FLOOD_CONNECTIONS = 128
"""The heavier flood: four times the valid callers' connections (wrk's 32). Each flood
connection waits for its answer before sending the next value, so with as many connections
as the callers the flood is the lighter load (a refused value takes longer to answer); both
are measured."""
COMPANION_MARGIN = 1.0
"""A companion runs this much longer than the wrk run it surrounds (which starts a few
milliseconds after the companion says it has started), or a quarter of the run if that is
less: 1 s from a run of 4 s up, 0.25 s around the 1-s runs of a smoke run, where a margin
of 1 s was idle time (four companions: 4 s of a 27-s run)."""
_SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})?\s+([0-9.e+-]+)$", re.MULTILINE)


def many_tokens(suite: Suite, ours: Server) -> None:
    values = _values(suite)
    tools.say(f"8. {len(values):,} distinct tokens against bare Starlette")
    n = f"{len(values):,}"
    script = load.cycle_script(values)
    ceiling = servers.bare(suite.logs, suite.cpu)
    suite.stack.callback(ceiling.stop)
    ceiling.start()
    found = suite.compare(
        [
            Target("self", ours.url + SELF, (), script, ours.pid),
            Target("verify", ours.url + VERIFY, (), script, ours.pid),
            Target("bare", ceiling.url + "/constant", (), script, ceiling.pid),
            Target("one", ours.url + SELF, (), load.cycle_script(values[:1]), ours.pid),
        ]
    )
    ceiling.stop()
    suite.rows += [
        Row("8", f"`GET {SELF}`, {n} distinct tokens cycled, SQLite", found["self"]),
        Row("8", f"`GET {VERIFY}`, {n} distinct tokens cycled", found["verify"]),
        Row("8", "bare Starlette, constant JSON, same wrk script", found["bare"]),
        Row("8", f"`GET {SELF}`, one token (the same script, a list of 1)", found["one"]),
    ]
    for label, name, target in (
        ("`/self`", "self", "≥ 0.5"),
        ("`/verify`", "verify", "(as `/self`) ≥ 0.5"),
    ):
        value = found[name].rps / found["bare"].rps
        suite.rows.append(
            ratio_row(
                "8", f"{label}, {n} tokens ÷ bare Starlette req/s", value, target, value >= 0.5
            )
        )
        suite.rows += _cpu_ratio(
            "8", f"bare Starlette ÷ {label} CPU per request", found["bare"], found[name], 0.5
        )
    suite.rows += _cpu_ratio(
        "8", f"`/self`: one token ÷ {n} tokens CPU per request", found["one"], found["self"], None
    )


def reads_under_writes(suite: Suite, ours: Server) -> None:
    values = _values(suite)
    tools.say(f"9. reads of {len(values):,} tokens, quiet and beside {WRITE_RATE:g} writes/s")
    script = load.cycle_script(values)
    reports: list[dict[str, Any]] = []
    counts: list[dict[str, float]] = []
    seconds = suite.options.duration + margin(suite.options.duration)
    args = [ours.url, f"{seconds:g}", f"{WRITE_RATE:g}"]
    env = {"BENCH_KEY": suite.stores[("sqlite", "small")]["admin"]}
    found = suite.compare(
        [
            Target("quiet", ours.url + SELF, (), script, ours.pid),
            Target("writes", ours.url + SELF, (), script, ours.pid),
        ],
        around={
            "writes": lambda: _Counted(ours, counts, Companion("bench.writer", args, reports, env))
        },
    )
    lookups = sum(delta["lookups"] for delta in counts)
    dropped = sum(delta["invalidations"] for delta in counts)
    n = f"{len(values):,}"
    writes = sum(int(report["writes"]) for report in reports)
    statuses: dict[str, int] = {}
    for report in reports:
        for status, count in report["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    rate = writes / max(0.001, sum(float(report["seconds"]) for report in reports))
    failed = sum(count for status, count in statuses.items() if not status.endswith(("200", "204")))
    worst = max((report["max_ms"] or 0 for report in reports), default=0)
    summary = ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
    value = found["writes"].rps / found["quiet"].rps
    suite.rows += [
        Row("9", f"`GET {SELF}`, {n} tokens cycled, no writes", found["quiet"]),
        Row(
            "9",
            f"the same, while another client writes {WRITE_RATE:g}/s (create, update, delete "
            "of other tokens)",
            found["writes"],
            f"{writes:,} writes at {rate:.1f}/s ({summary}; {failed} failed; slowest "
            f"{worst:,.0f} ms); server: {lookups:,.0f} digest lookups, {dropped:,.0f} cache "
            "invalidations",
        ),
        ratio_row("9", "reads with writes ÷ without, req/s", value, "≥ 0.8", value >= 0.8),
        *_cpu_ratio(
            "9",
            "reads without ÷ with writes, server CPU per read (writes' CPU included)",
            found["quiet"],
            found["writes"],
            0.8,
        ),
    ]


def flood(suite: Suite, ours: Server) -> None:
    tools.say("10. valid callers during a flood of unknown values")
    values = _values(suite)
    script = load.cycle_script(values)
    seconds = suite.options.duration + margin(suite.options.duration)
    floods = {  # label: (sources, connections, description)
        "many-32": ("many", 32, "from many addresses, 32 connections"),
        "many-128": (
            "many",
            FLOOD_CONNECTIONS,
            f"from many addresses, {FLOOD_CONNECTIONS} connections",
        ),
        "one-128": ("one", FLOOD_CONNECTIONS, f"from one address, {FLOOD_CONNECTIONS} connections"),
    }
    reports: dict[str, list[dict[str, Any]]] = {label: [] for label in floods}
    counts: dict[str, list[dict[str, float]]] = {label: [] for label in floods}

    def flooding(label: str) -> Callable[[], AbstractContextManager[object]]:
        kind, connections, _ = floods[label]
        args = [str(ours.port), f"{seconds:g}", str(connections), kind]
        return lambda: _Counted(ours, counts[label], Companion("bench.flood", args, reports[label]))

    found = suite.compare(
        [
            Target("quiet", ours.url + SELF, (), script, ours.pid),
            *(Target(label, ours.url + SELF, (), script, ours.pid) for label in floods),
        ],
        around={label: flooding(label) for label in floods},
    )
    quiet = found["quiet"]
    n = f"{len(values):,}"
    suite.rows.append(Row("10", f"valid callers: `GET {SELF}`, {n} tokens cycled, quiet", quiet))
    for label, (kind, _, description) in floods.items():
        result = found[label]
        result.cpu_us = None  # the server's CPU went to the flood too: not per valid request
        answered = sum(int(report["answered"]) for report in reports[label])
        flood_seconds = sum(float(report["seconds"]) for report in reports[label])
        addresses = sum(int(report["addresses"]) for report in reports[label])
        statuses: dict[str, int] = {}
        for report in reports[label]:
            for status, count in report["answers"].items():
                statuses[status] = statuses.get(status, 0) + count
        delta = {name: sum(d[name] for d in counts[label]) for name in counts[label][0]}
        summary = ", ".join(f"{status}: {count:,}" for status, count in sorted(statuses.items()))
        # The server's CPU over the flood's whole run, less the valid reads at their quiet
        # cost, over the flood's requests: what one refused value costs, roughly.
        cost = ""
        if quiet.cpu_us is not None and answered:
            rest = delta["cpu"] * 1e6 - result.requests * quiet.cpu_us
            cost = f"; server CPU per flood request ≈ {max(0.0, rest) / answered:,.0f} µs"
        suite.rows.append(
            Row(
                "10",
                f"valid callers during a flood of unknown values {description}",
                result,
                f"flood: {answered:,} answered at {answered / max(0.001, flood_seconds):,.0f}/s "
                f"from {addresses:,} addresses ({summary}); server counted "
                f"{delta['unknown']:,.0f} unknown, {delta['rate_limited']:,.0f} rate-limited"
                f"{cost}",
            )
        )
        value = result.rps / quiet.rps if quiet.rps else 0.0
        many = kind == "many"
        suite.rows.append(
            ratio_row(
                "10",
                f"valid callers' req/s, flood {description} ÷ quiet",
                value,
                "≥ 0.5" if many else "",
                value >= 0.5 if many else None,
            )
        )
        # Lookups that found nothing: the flood's (the valid callers' own lookups, when
        # their cached credentials reach the cache's TTL, find their token).
        unknown, lookups = delta["unknown"], delta["unknown_lookups"]
        per = lookups / unknown if unknown else 0.0
        suite.rows.append(
            Row(
                "10",
                f"database lookups of a digest per unknown value, flood {description}",
                figure=f"**{per:.4f}** ({lookups:,.0f} lookups that found nothing / "
                f"{unknown:,.0f} unknown; {delta['lookups']:,.0f} lookups in all)",
                target="≈ 0" if many else "",
                met=(per < 0.01) if many and unknown else None,
            )
        )


def margin(duration: float) -> float:
    """How much longer than a wrk run of ``duration`` seconds its companion runs."""
    return min(COMPANION_MARGIN, duration / 4)


class _Counted:
    """Around a companion: the server's counters before and after (``/metrics``)."""

    def __init__(self, server: Server, into: list[dict[str, float]], inner: Companion) -> None:
        self.server, self.into, self.inner = server, into, inner

    def __enter__(self) -> _Counted:
        self.before = counters(self.server)
        self.cpu = load.cpu_seconds(self.server.pid)
        self.inner.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.inner.__exit__(*exc)
        if exc[0] is None:
            cpu = load.cpu_seconds(self.server.pid) - self.cpu
            after = counters(self.server)
            delta = {name: after[name] - self.before[name] for name in after}
            self.into.append({**delta, "cpu": cpu})


def counters(server: Server) -> dict[str, float]:
    """The counters section 10 reports, read from the server's ``/metrics``."""
    text = httpx.get(server.url + "/metrics", timeout=30.0).raise_for_status().text
    found = {
        "unknown": 0.0,
        "rate_limited": 0.0,
        "lookups": 0.0,
        "unknown_lookups": 0.0,
        "invalidations": 0.0,
    }
    for name, labels, value in _SAMPLE.findall(text):
        if name == "apitokens_credential_lookups_total":
            found["lookups"] += float(value)
            if 'result="unknown"' in labels:
                found["unknown_lookups"] += float(value)
        elif name == "apitokens_credential_cache_invalidations_total":
            found["invalidations"] += float(value)
        elif name == "apitokens_authentications_total":
            if 'reason="unknown"' in labels:
                found["unknown"] += float(value)
            elif 'outcome="rate_limited"' in labels:
                found["rate_limited"] += float(value)
    return found


def _values(suite: Suite) -> list[str]:
    values: list[str] = suite.stores[("sqlite", "small")]["values"]
    return values


def _cpu_ratio(
    section: str, label: str, cheap: Result, dear: Result, least: float | None
) -> list[Row]:
    if cheap.cpu_us is None or not dear.cpu_us:
        return []
    value = cheap.cpu_us / dear.cpu_us
    if least is None:
        return [ratio_row(section, label, value, "", None)]
    return [ratio_row(section, label, value, f"≥ {least:g} (by CPU)", value >= least)]


def main(argv: list[str] | None = None) -> int:
    """Sections 8-10 alone (and 7 with ``--workers``): one SQLite store, filled here."""
    parser = argparse.ArgumentParser(prog="python -m bench.contention", description=__doc__)
    parser.add_argument("--tokens", type=int, default=1_000)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--workers", action="store_true", help="also section 7 (workers 2 against 1), first"
    )
    args = parser.parse_args(argv)
    from bench.options import Options
    from bench.sections import Suite

    tools.ensure_wrk()
    facts = tools.machine()  # with the load average at the start
    options = Options(
        tokens=args.tokens,
        small_tokens=args.tokens,
        duration=args.duration,
        warmup=args.warmup,
        rounds=args.rounds,
        write_seconds=0,
        backends=("sqlite",),
        pin=False,
        save="",
    )
    with contextlib.ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="apitokens-bench-contention-"))
        stack.callback(shutil.rmtree, work, True)
        (work / "logs").mkdir()
        suite = Suite(options, work, stack, Path(sys.executable), None)
        url = f"sqlite:///{work / 'small.db'}"
        suite.urls[("sqlite", "small")] = url
        done = subprocess.run(
            [sys.executable, "-m", "bench.fill", url, str(args.tokens), str(args.tokens)],
            cwd=servers.ROOT,
            capture_output=True,
            check=True,
        )
        suite.stores[("sqlite", "small")] = json.loads(done.stdout)
        if args.workers:  # section 7 first: 9 changes the store
            suite.rows += compare_workers(
                url,
                suite.stores[("sqlite", "small")],
                suite.logs,
                stack,
                (args.duration, args.warmup, args.rounds),
            )
        cycled = suite.server("sqlite", "small")
        many_tokens(suite, cycled)
        reads_under_writes(suite, cycled)
        cycled.stop()
        flood(suite, suite.server("sqlite", "small"))
    print("\n".join(f"- {name}: {value}" for name, value in facts.items()))
    print(f"- load average at end: {tools.load_average()}\n")
    print(table(suite.rows))
    for row in suite.rows:
        if row.result is not None:
            print(f"{row.label}: rounds {[round(r) for r in row.result.rounds]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
