"""After ``mutmut run``: re-check survivors in a new interpreter, then print the score.

Run by scripts/mutation from the repository root (``python report.py [--no-recheck]
[--min-total N] [--min-module N]``). Reads what mutmut left in ``mutants/``:
``src/**.py.meta`` (each mutant's exit code) and ``mutmut-stats.json`` (which tests reach
which function). Equivalent mutants come from ``docs/mutation-equivalents.txt``.

Score = killed / (generated - equivalent), per module and overall. A mutant counts as
killed when a test failed (exit 1 or 3) or it ran out of time (an endless loop is
noticed too); a survivor, a mutant no fast test reaches and anything else counts against.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MUTANTS = ROOT / "mutants"
EQUIVALENTS = ROOT / "docs" / "mutation-equivalents.txt"
PLUGIN_DIR = Path(__file__).resolve().parent

KILLED = {1, 3}
TIMEOUT = {24, -24, 152, 255, 36, -9, -11}
SURVIVED = {0}
NO_TESTS = {5, 33}


def load_equivalents() -> dict[str, str]:
    """``id  reason`` lines; ``#`` starts a comment line."""
    found: dict[str, str] = {}
    if not EQUIVALENTS.exists():
        return found
    for line in EQUIVALENTS.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition(" ")
        if not reason.strip():
            sys.exit(f"{EQUIVALENTS}: {name} has no reason")
        found[name] = reason.strip()
    return found


def load_results() -> dict[str, int | None]:
    results: dict[str, int | None] = {}
    for meta in sorted((MUTANTS / "src").rglob("*.py.meta")):
        data = json.loads(meta.read_text(encoding="utf-8"))
        results.update(data.get("exit_code_by_key", {}))
    return results


def module_of(mutant: str) -> str:
    """``apitokens.service.limiter.xǁFailureLimiterǁcheck__mutmut_3`` -> the module."""
    return mutant.rsplit(".", 1)[0]


def function_of(mutant: str) -> str:
    """The mangled function name mutmut's stats are keyed by."""
    return mutant.rsplit("__mutmut_", 1)[0]


def recheck(mutant: str, tests: list[str]) -> int:
    """Run the mutant's tests in a new interpreter (no state of any earlier run)."""
    env = dict(os.environ)
    env["MUTANT_UNDER_TEST"] = mutant
    env["PYTHONPATH"] = os.pathsep.join([str(MUTANTS / "src"), str(PLUGIN_DIR)])
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--rootdir=.",
        "-x",
        "-q",
        "-p",
        "apitokens_mutation_plugin",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        *sorted(tests),
    ]
    done = subprocess.run(
        command, cwd=MUTANTS, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return done.returncode


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-recheck", action="store_true")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--min-total", type=float, default=90.0)
    parser.add_argument("--min-module", type=float, default=85.0)
    options = parser.parse_args()

    results = load_results()
    if not results:
        print("no mutants found under mutants/: run scripts/mutation", file=sys.stderr)
        return 1
    equivalents = load_equivalents()
    stats = json.loads((MUTANTS / "mutmut-stats.json").read_text(encoding="utf-8"))
    tests_of = stats["tests_by_mangled_function_name"]

    survivors = sorted(name for name, code in results.items() if code in SURVIVED)
    if not options.no_recheck:
        rechecked = [name for name in survivors if name not in equivalents]
        print(f"re-checking {len(rechecked)} survivors, each in a new interpreter", flush=True)
        with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
            codes = list(
                pool.map(lambda name: recheck(name, tests_of.get(function_of(name), [])), rechecked)
            )
        for name, code in zip(rechecked, codes, strict=True):
            if code in KILLED:
                print(f"  killed on re-check (state leaked between tests?): {name}")
                results[name] = code
            elif code not in SURVIVED:
                print(f"  re-check of {name} ended with exit status {code}")

    stale = sorted(set(equivalents) - set(results))
    killed_equivalents = sorted(n for n in equivalents if results.get(n) in KILLED | TIMEOUT)

    table: dict[str, Counter[str]] = {}
    for name, code in results.items():
        row = table.setdefault(module_of(name), Counter())
        row["generated"] += 1
        if name in equivalents and code not in KILLED | TIMEOUT:
            row["equivalent"] += 1
        elif code in KILLED:
            row["killed"] += 1
        elif code in TIMEOUT:
            row["timeout"] += 1
        elif code in SURVIVED:
            row["survived"] += 1
        elif code in NO_TESTS:
            row["no tests"] += 1
        else:
            row["other"] += 1

    remaining = sorted(
        name
        for name, code in results.items()
        if code not in KILLED | TIMEOUT and name not in equivalents
    )
    if remaining:
        print("\nmutants not killed (mutmut show ID, from the repository root, shows one):")
        for name in remaining:
            print(f"  {name}  [{status(results[name])}]")

    columns = ("generated", "killed", "timeout", "survived", "no tests", "other", "equivalent")
    header = f"{'module':<34}" + "".join(f"{c:>11}" for c in columns) + f"{'score':>9}"
    print()
    print(header)
    print("-" * len(header))
    total: Counter[str] = Counter()
    failing: list[str] = []
    for module in sorted(table):
        row = table[module]
        total.update(row)
        score = percent(row)
        if score < options.min_module:
            failing.append(module)
        print(
            f"{module.removeprefix('apitokens.'):<34}"
            + "".join(f"{row[c]:>11}" for c in columns)
            + f"{score:>8.1f}%"
        )
    print("-" * len(header))
    overall = percent(total)
    print(f"{'total':<34}" + "".join(f"{total[c]:>11}" for c in columns) + f"{overall:>8.1f}%")
    if stale:
        print(f"\nequivalent-mutant ids not generated any more (review the list): {stale}")
    if killed_equivalents:
        print(f"\nlisted as equivalent but killed (remove them): {killed_equivalents}")
    print()
    if failing:
        print(f"modules under {options.min_module:g} %: {', '.join(failing)}")
    print(f"mutation score: {overall:.1f}%")
    return 0 if overall >= options.min_total and not failing else 1


def percent(row: Counter[str]) -> float:
    scored = row["generated"] - row["equivalent"]
    return 100.0 * (row["killed"] + row["timeout"]) / scored if scored else 100.0


def status(code: int | None) -> str:
    if code in SURVIVED:
        return "survived"
    if code in NO_TESTS:
        return "no tests"
    if code is None:
        return "not run"
    return f"exit {code}"


if __name__ == "__main__":
    sys.exit(main())
