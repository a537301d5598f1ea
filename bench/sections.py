"""The sections of the benchmark: fill the stores, start the servers, load them, collect rows."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from bench import contention, load, servers, tools
from bench.load import Target
from bench.options import Options
from bench.report import Row, ratio_row
from bench.servers import ROOT, Server
from bench.workers import compare_workers

SELF = "/api-tokens/self"
NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
SERVER_CPU, WRK_CPU = 1, 0


class Suite:
    def __init__(
        self,
        options: Options,
        work: Path,
        stack: contextlib.ExitStack,
        peer_python: Path | None,
        postgres: Any,
    ) -> None:
        self.options = options
        self.work = work
        self.logs = work / "logs"
        self.stack = stack
        self.peer_python = peer_python
        self.postgres = postgres
        self.postgres_version: str | None = None
        self.cpu = SERVER_CPU if options.pin else None
        self.wrk_cpu = WRK_CPU if options.pin else None
        self.urls: dict[tuple[str, str], str] = {}
        self.stores: dict[tuple[str, str], dict[str, Any]] = {}
        self.peer_key = ""
        self.peer_rss = 0.0
        self.small_rss = 0.0
        self.small_rss_postgres = 0.0
        self.fill_seconds: dict[str, float] = {}
        self.rows: list[Row] = []

    # -- preparation --------------------------------------------------------------------

    def fill(self) -> None:
        """Fill every store at once (one process each: both cores work)."""
        sizes = {"small": self.options.small_tokens, "large": self.options.tokens}
        values = {"small": self.options.small_tokens, "large": 0}  # sections 8-10 cycle them
        for size in sizes:
            self.urls[("sqlite", size)] = f"sqlite:///{self.work / f'{size}.db'}"
            if self.postgres is not None:
                self.urls[("postgresql", size)] = self.postgres.create_database(f"bench_{size}")
        if self.postgres is not None:
            with self.postgres.connect() as connection:
                self.postgres_version = connection.execute("SHOW server_version").fetchone()[0]
        peers = f", and {self.options.tokens} peer keys" if self.peer_python else ""
        tools.say(f"filling stores: {sizes} tokens{peers}")
        started = time.monotonic()
        jobs = {
            key: subprocess.Popen(
                [sys.executable, "-m", "bench.fill", url, str(sizes[key[1]]), str(values[key[1]])],
                cwd=ROOT,
                stdout=subprocess.PIPE,
            )
            for key, url in self.urls.items()
        }
        peer_job = (
            subprocess.Popen(
                [str(self.peer_python), "-m", "bench.peer.fill", str(self.options.tokens)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                env={"BENCH_PEER_DB": str(self.work / "peer.db"), "PATH": "/usr/bin:/bin"},
            )
            if self.peer_python
            else None
        )
        for key, job in jobs.items():
            self.stores[key] = json.loads(_finish(job, f"fill {key}"))
            store = self.stores[key]
            self.fill_seconds[f"{key[0]} {store['count']:,}"] = store["seconds"]
        if peer_job is not None:
            peer = json.loads(_finish(peer_job, "fill peer"))
            self.peer_key = peer["key"]
            self.fill_seconds[f"peer {peer['count']:,}"] = peer["seconds"]
        self.fill_seconds["all, in parallel"] = round(time.monotonic() - started, 1)
        tools.say(f"filled in {time.monotonic() - started:.0f} s")

    def server(self, backend: str, size: str) -> Server:
        name = f"apitokens-{backend}-{size}"
        server = servers.ours(name, self.urls[(backend, size)], self.logs, self.cpu, {})
        self.stack.callback(server.stop)
        return server.start()

    def target(
        self,
        label: str,
        server: Server,
        path: str,
        store: dict[str, Any],
        script: str | None = None,
    ) -> Target:
        return Target(
            label, server.url + path, (("X-API-Key", store["admin"]),), script, server.pid
        )

    def compare(
        self,
        targets: list[Target],
        around: dict[str, Callable[[], AbstractContextManager[object]]] | None = None,
    ) -> dict[str, load.Result]:
        o = self.options
        return load.compare(targets, o.duration, o.warmup, o.rounds, self.wrk_cpu, around)

    # -- sections -----------------------------------------------------------------------

    def run_all(self) -> list[Row]:
        """Every section of ``options.sections``, in an order that shares servers."""
        o = self.options
        wanted = o.sections.__contains__
        self.fill()
        if wanted("1") or wanted("2") or wanted("6"):
            small = self.server("sqlite", "small")
            if wanted("1"):
                self.auth_overhead(small)
        large: dict[str, Server] = {}
        if any(map(wanted, ("2", "3", "4", "5", "6"))):
            for backend in o.backends:
                large[backend] = self.server(backend, "large")
                if wanted("2"):
                    self.store_scale(
                        backend, large[backend], small if backend == "sqlite" else None
                    )
        if wanted("1") or wanted("2") or wanted("6"):
            self.small_rss = small.rss_mib()
            small.stop()
        for backend in o.backends if wanted("3") else ():
            self.listing(backend, large[backend])
        if wanted("5"):
            self.peer(large["sqlite"])
        for backend in o.backends if wanted("4") else ():
            self.writes(backend, large[backend])
        if wanted("6"):
            self.memory(large)
        if wanted("7"):
            self.rows += compare_workers(
                self.urls[("sqlite", "small")],
                self.stores[("sqlite", "small")],
                self.logs,
                self.stack,
                (o.duration, o.warmup, o.rounds),
                self.cpu,
                self.wrk_cpu,
            )
        if wanted("8") or wanted("9"):
            cycled = self.server("sqlite", "small")  # afresh: an empty cache and limiter
            if wanted("8"):
                contention.many_tokens(self, cycled)
            if wanted("9"):
                contention.reads_under_writes(self, cycled)
            cycled.stop()
        if wanted("10"):
            contention.flood(self, self.server("sqlite", "small"))
        return sorted(self.rows, key=lambda row: int(row.section))

    def auth_overhead(self, ours: Server) -> None:
        tools.say("1. auth overhead")
        store = self.stores[("sqlite", "small")]
        ceiling = servers.bare(self.logs, self.cpu)
        self.stack.callback(ceiling.stop)
        ceiling.start()
        found = self.compare(
            [
                Target("healthz", ours.url + "/healthz", pid=ours.pid),
                self.target("self", ours, SELF, store),
                Target("bare", ceiling.url + "/constant", pid=ceiling.pid),
            ]
        )
        ceiling.stop()
        n = f"{self.options.small_tokens:,}"
        self.rows += [
            Row("1", f"`GET /healthz`, ours (SQLite, {n} tokens)", found["healthz"]),
            Row("1", f"`GET {SELF}` authenticated, same server", found["self"]),
            Row("1", "bare Starlette, constant JSON (the ceiling)", found["bare"]),
            ratio_row(
                "1",
                "auth overhead: `/self` ÷ `/healthz` req/s",
                found["self"].rps / found["healthz"].rps,
                "≥ 0.85",
                found["self"].rps / found["healthz"].rps >= 0.85,
            ),
            *_cpu_row(
                "1",
                "auth overhead: `/healthz` ÷ `/self` CPU per request",
                found["healthz"],
                found["self"],
                0.85,
            ),
            ratio_row(
                "1",
                "`/self` ÷ bare Starlette req/s",
                found["self"].rps / found["bare"].rps,
                "(ceiling)",
                None,
            ),
            ratio_row(
                "1",
                "`/healthz` ÷ bare Starlette req/s",
                found["healthz"].rps / found["bare"].rps,
                "(ceiling)",
                None,
            ),
        ]

    def store_scale(self, backend: str, large: Server, small: Server | None) -> None:
        tools.say(f"2. store scale, {backend}")
        if small is None:
            small = self.server(backend, "small")
        found = self.compare(
            [
                self.target("small", small, SELF, self.stores[(backend, "small")]),
                self.target("large", large, SELF, self.stores[(backend, "large")]),
            ]
        )
        if backend != "sqlite":
            self.small_rss_postgres = small.rss_mib()
            small.stop()
        name = NAMES[backend]
        value = found["large"].rps / found["small"].rps
        self.rows += [
            Row("2", f"`GET {SELF}`, {name}, {self.options.small_tokens:,} tokens", found["small"]),
            Row("2", f"`GET {SELF}`, {name}, {self.options.tokens:,} tokens", found["large"]),
            ratio_row(
                "2", f"store scale, {name}: large ÷ small req/s", value, "≥ 0.90", value >= 0.90
            ),
            *_cpu_row(
                "2",
                f"store scale, {name}: small ÷ large CPU per request",
                found["small"],
                found["large"],
                0.90,
            ),
        ]
        if backend == "postgresql":
            self.writes_per_read(large)

    def writes_per_read(self, server: Server) -> None:
        """No database write per read: the WAL PostgreSQL writes while only reads arrive.

        One row update is a few hundred bytes of WAL; the coalesced lastUsedAt flush (every
        2 s) is the only write expected, so the bytes per read should be near zero.
        """
        store = self.stores[("postgresql", "large")]
        before = self._wal_bytes()
        result = load.run(self.target("reads", server, SELF, store), self.options.duration)
        written = self._wal_bytes() - before
        per_read = written / max(1, result.requests)
        self.rows.append(
            Row(
                "2",
                f"WAL written during {result.requests:,} reads of `{SELF}`, PostgreSQL",
                result,
                f"**{per_read:.2f} B/read** ({written:,} B)",
                "no write per read (< 10 B/read)",
                per_read < 10,
            )
        )

    def _wal_bytes(self) -> int:
        with self.postgres.connect() as connection:
            row = connection.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"
            ).fetchone()
        return int(row[0])

    def listing(self, backend: str, server: Server) -> None:
        tools.say(f"3. listing, {backend}")
        store = self.stores[(backend, "large")]
        deep = f"/api-tokens?limit=100&cursor={store['deep_cursor']}"
        found = self.compare(
            [
                self.target("first", server, "/api-tokens?limit=100", store),
                self.target("deep", server, deep, store),
            ]
        )
        name, n = NAMES[backend], f"{self.options.tokens:,}"
        value = found["first"].rps / found["deep"].rps
        self.rows += [
            Row("3", f"list, first page of 100, {name}, {n} tokens", found["first"]),
            Row("3", f"list, page of 100 after rank {store['deep_rank']:,}, {name}", found["deep"]),
            ratio_row(
                "3", f"deep page cost ÷ first page cost, {name}", value, "≤ 1.5", value <= 1.5
            ),
        ]

    def peer(self, ours: Server) -> None:
        tools.say("5. the peer (DRF + djangorestframework-api-key)")
        assert self.peer_python is not None, "the peer's virtualenv is made when 5 is run"
        database = self.work / "peer.db"
        other = servers.peer(self.peer_python, database, self.logs, self.cpu)
        self.stack.callback(other.stop)
        other.start()
        found = self.compare(
            [
                self.target("ours", ours, SELF, self.stores[("sqlite", "large")]),
                Target(
                    "peer", other.url + "/check", (("X-API-Key", self.peer_key),), pid=other.pid
                ),
            ]
        )
        self.peer_rss = other.rss_mib()
        other.stop()
        n = f"{self.options.tokens:,}"
        value = found["ours"].rps / found["peer"].rps
        self.rows += [
            Row("5", f"ours, `GET {SELF}`, SQLite, {n} tokens", found["ours"]),
            Row("5", f"peer: DRF view + `HasAPIKey`, SQLite, {n} keys", found["peer"]),
            ratio_row("5", "ours ÷ peer req/s", value, "≥ 5", value >= 5),
            *_cpu_row("5", "peer ÷ ours CPU per request", found["peer"], found["ours"], 5),
        ]

    def writes(self, backend: str, server: Server) -> None:
        tools.say(f"4. writes, {backend}")
        store = self.stores[(backend, "large")]
        body = json.dumps({"name": "bench-created", "permissions": ["AlertRead"]})
        name, seconds = NAMES[backend], self.options.write_seconds
        for label, path, script in (
            ("creates", "/api-tokens", load.post_script(body)),
            ("rotations", "/api-tokens/{id}/rotate", load.rotate_script(store["rotate_ids"])),
        ):
            target = self.target(label, server, path.replace("/{id}/rotate", ""), store, script)
            if self.options.warmup > 0:  # 1 s of the same writes first (none with --warmup 0)
                load.run(target, 1, self.wrk_cpu)
            result = load.run(target, seconds, self.wrk_cpu)
            self.rows.append(Row("4", f"{label} per second (`POST {path}`), {name}", result))

    def memory(self, large: dict[str, Server]) -> None:
        n, small = f"{self.options.tokens:,}", f"{self.options.small_tokens:,}"
        self.rows.append(
            Row(
                "6",
                f"ours, RSS after its load, SQLite, {small} tokens (for scale)",
                figure=f"{self.small_rss:.0f} MiB",
            )
        )
        if self.small_rss_postgres:
            self.rows.append(
                Row(
                    "6",
                    f"ours, RSS after its load, PostgreSQL, {small} tokens (for scale)",
                    figure=f"{self.small_rss_postgres:.0f} MiB",
                )
            )
        for backend, server in large.items():
            rss = server.rss_mib()
            self.rows.append(
                Row(
                    "6",
                    f"ours, RSS after the load, {NAMES[backend]}, {n} tokens",
                    figure=f"**{rss:.0f} MiB**",
                )
            )
        if self.peer_rss:  # section 5 ran
            self.rows.append(
                Row("6", f"peer, RSS after its load, {n} keys", figure=f"{self.peer_rss:.0f} MiB")
            )


def _cpu_row(
    section: str, label: str, cheap: load.Result, dear: load.Result, least: float
) -> list[Row]:
    """The same ratio from the servers' CPU time per request: steadier than req/s when
    other processes take CPU from the server (req/s follows CPU per request only while
    the server gets a whole core)."""
    if cheap.cpu_us is None or dear.cpu_us is None or not dear.cpu_us:
        return []
    value = cheap.cpu_us / dear.cpu_us
    return [ratio_row(section, label, value, f"≥ {least:g} (by CPU)", value >= least)]


def _finish(job: subprocess.Popen[bytes], what: str) -> bytes:
    out, _ = job.communicate()
    if job.returncode != 0:
        raise RuntimeError(f"{what} failed with status {job.returncode}")
    return out
