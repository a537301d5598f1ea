"""Driving a server with wrk, and reading wrk's report.

wrk runs with one thread (so the load generator takes one of the two cores) and a fixed
number of connections; each run is bounded by ``--duration``. POST requests (creates
and rotations) are made by small Lua scripts.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

CONNECTIONS = 32
THREADS = 1
PACE_MS = 0
"""Milliseconds each connection waits before its next request (a wrk ``delay()``), 0 for
none: ``--pace`` sets it for a run that only has to work, not measure (the smoke test)."""
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_LATENCY = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    failed: int  # non-2xx responses plus socket errors
    rounds: list[float] = field(default_factory=list)  # req/s of every measured round
    cpu_us: float | None = None  # server CPU time (user + system) per request
    wrk_cpu_us: float | None = None  # the load generator's CPU time per request

    def as_dict(self) -> dict[str, object]:
        return {
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "requests": self.requests,
            "failed": self.failed,
            "rounds": [round(value, 1) for value in self.rounds],
            "cpu_us_per_request": None if self.cpu_us is None else round(self.cpu_us, 1),
            "wrk_cpu_us_per_request": None
            if self.wrk_cpu_us is None
            else round(self.wrk_cpu_us, 1),
        }


@dataclass(frozen=True)
class Target:
    """One thing to load: a URL, its headers, and an optional wrk Lua script."""

    label: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    script: str | None = None
    pid: int | None = None  # the server's process, whose CPU time is measured


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, its threads and every process below it (the
    workers of a multi-worker server), in seconds."""
    stats = _stats()
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        fields = stats.get(current)
        if fields is None:
            continue
        total += int(fields[11]) + int(fields[12])
        pending += [child for child, other in stats.items() if int(other[1]) == current]
    return total / os.sysconf("SC_CLK_TCK")


def _stats() -> dict[int, list[str]]:
    """``/proc/<pid>/stat`` of every process, split after the command name."""
    found: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
    return found


def wrk_version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).splitlines()[0]
    return first.split(" Copyright")[0].strip()


def parse(report: str) -> Result:
    """Read requests/s, p50/p99 latency and failures from wrk's ``--latency`` report."""
    rps = _RPS.search(report)
    total = _TOTAL.search(report)
    if rps is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{report}")
    latency = {m[0]: float(m[1]) * _UNITS[m[2]] for m in _LATENCY.findall(report)}
    failed = sum(int(n) for n in _NON_2XX.findall(report))
    socket = _SOCKET.search(report)
    if socket:
        failed += sum(int(n) for n in socket.groups())
    value = float(rps.group(1))
    return Result(
        value, latency.get("50", 0.0), latency.get("99", 0.0), int(total.group(1)), failed, [value]
    )


def run(target: Target, seconds: float, cpu: int | None = None) -> Result:
    """Load ``target`` for ``seconds`` with wrk; return what wrk measured."""
    seconds = max(1, round(seconds))  # wrk takes whole seconds
    command = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    command += ["--timeout", "10s"]
    for name, value in target.headers:
        command += ["-H", f"{name}: {value}"]
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as scratch:
        text = target.script
        if PACE_MS:
            text = f"{text or ''}\nfunction delay()\n  return {PACE_MS}\nend\n"
        if text is not None:
            script = Path(scratch) / "script.lua"
            script.write_text(text, encoding="utf-8")
            command += ["-s", str(script)]
        command.append(target.url)
        if cpu is not None and shutil.which("taskset"):
            command = ["taskset", "-c", str(cpu), *command]
        cpu_before = cpu_seconds(target.pid) if target.pid else 0.0
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=seconds + 60
        )
        cpu_after = cpu_seconds(target.pid) if target.pid else 0.0
        spent = resource.getrusage(resource.RUSAGE_CHILDREN)
        wrk_cpu = spent.ru_utime + spent.ru_stime - children.ru_utime - children.ru_stime
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr}{done.stdout}")
    if "script.lua" in done.stderr:  # a script that does not compile: wrk runs without it
        raise RuntimeError(f"wrk's Lua script failed: {done.stderr}")
    result = parse(done.stdout)
    if result.requests:
        result.wrk_cpu_us = wrk_cpu * 1e6 / result.requests
    if target.pid and result.requests:
        result.cpu_us = (cpu_after - cpu_before) * 1e6 / result.requests
    return result


def compare(
    targets: list[Target],
    seconds: float,
    warmup: float,
    rounds: int,
    cpu: int | None = None,
    around: dict[str, Callable[[], AbstractContextManager[object]]] | None = None,
) -> dict[str, Result]:
    """Warm each target up, then load them in turn, ``rounds`` times over.

    Interleaving the targets spreads the machine's noise over all of them; each target
    keeps its best round (the least disturbed one), with every round recorded.
    ``around``: by target label, a context made afresh around each of that target's
    measured runs (another client loading the server at the same time).
    """
    around = around or {}
    if warmup > 0:
        for target in targets:
            run(target, warmup, cpu)
    measured: dict[str, list[Result]] = {target.label: [] for target in targets}
    for _ in range(rounds):
        for target in targets:
            with around.get(target.label, contextlib.nullcontext)():
                measured[target.label].append(run(target, seconds, cpu))
    best: dict[str, Result] = {}
    for label, results in measured.items():
        kept = max(results, key=lambda result: result.rps)
        kept.rounds = [result.rps for result in results]
        kept.failed = sum(result.failed for result in results)
        kept.requests = sum(result.requests for result in results)
        timed = [(r.cpu_us, r.requests) for r in results if r.cpu_us is not None]
        if timed:  # CPU per request over every round: steadier than any one round
            spent = sum(cpu * requests for cpu, requests in timed)
            kept.cpu_us = spent / max(1, sum(requests for _, requests in timed))
        best[label] = kept
    return best


def post_script(body: str) -> str:
    """A wrk script that POSTs one JSON body."""
    escaped = body.replace("\\", "\\\\").replace("'", "\\'")
    return (
        'wrk.method = "POST"\n'
        f"wrk.body = '{escaped}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )


def rotate_script(token_ids: list[str]) -> str:
    """A wrk script that rotates the given tokens in turn (never one twice at once)."""
    ids = ",".join(f'"{token_id}"' for token_id in token_ids)
    return (
        f"local ids = {{{ids}}}\n"
        "local next_index = 0\n"
        "request = function()\n"
        "  next_index = next_index % #ids + 1\n"
        '  return wrk.format("POST", "/api-tokens/" .. ids[next_index] .. "/rotate")\n'
        "end\n"
    )


def cycle_script(values: list[str], header: str = "X-API-Key") -> str:
    """A wrk script that sends each request with the next of ``values`` in ``header``,
    cycling over all of them (one client population of many distinct tokens)."""
    listed = ",".join(f'"{value}"' for value in values)
    return (
        f"local values = {{{listed}}}\n"
        "local next_index = 0\n"
        "request = function()\n"
        "  next_index = next_index % #values + 1\n"
        f'  return wrk.format(nil, nil, {{["{header}"] = values[next_index]}})\n'
        "end\n"
    )
