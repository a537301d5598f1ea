"""``python -m bench`` (or ``bench/run``): run the whole benchmark, print the table."""

from __future__ import annotations

import argparse
import sys

from bench.options import Options
from bench.suite import run


def parse(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="bench/run", description="Benchmark apitokens against its ceiling and a peer."
    )
    parser.add_argument(
        "--tokens",
        type=int,
        default=1_000_000,
        help="tokens in the large stores, keys in the peer (default 1000000)",
    )
    parser.add_argument(
        "--small-tokens", type=int, default=1_000, help="tokens in the small stores (default 1000)"
    )
    parser.add_argument(
        "--duration", type=int, default=5, help="seconds of each measured wrk run (default 5)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=2,
        help="seconds of warm-up load before a target is measured, 0 for none (default 2)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved rounds per comparison; the best is kept (default 3)",
    )
    parser.add_argument(
        "--write-seconds", type=int, default=5, help="seconds of each create/rotate run (default 5)"
    )
    parser.add_argument(
        "--backends",
        default="sqlite,postgresql",
        help="comma-separated: sqlite, postgresql (default both)",
    )
    parser.add_argument(
        "--pin", action="store_true", help="pin servers to CPU 1 and wrk to CPU 0 (taskset)"
    )
    parser.add_argument(
        "--sections",
        default="all",
        help="comma-separated section numbers (1-10) to measure, or all (default all)",
    )
    parser.add_argument(
        "--pace",
        type=int,
        default=0,
        help="milliseconds each wrk connection waits between requests: a light load that "
        "only has to work, not measure (the smoke test); default 0, none",
    )
    parser.add_argument(
        "--save",
        default="bench/results",
        help="folder for the Markdown and JSON of the run ('' to skip)",
    )
    args = parser.parse_args(argv)
    backends = tuple(name.strip() for name in args.backends.split(",") if name.strip())
    unknown = set(backends) - {"sqlite", "postgresql"}
    if unknown or "sqlite" not in backends:
        parser.error("--backends takes sqlite (required: the peer comparison uses it), postgresql")
    every = {str(number) for number in range(1, 11)}
    sections = (
        every
        if args.sections == "all"
        else {part.strip() for part in args.sections.split(",") if part.strip()}
    )
    if not sections or sections - every:
        parser.error("--sections takes all, or numbers from 1 to 10 separated by commas")
    return Options(
        tokens=args.tokens,
        small_tokens=args.small_tokens,
        duration=args.duration,
        warmup=args.warmup,
        rounds=args.rounds,
        write_seconds=args.write_seconds,
        backends=backends,
        pin=args.pin,
        save=args.save,
        sections=frozenset(sections),
        pace=max(0, args.pace),
    )


def main(argv: list[str] | None = None) -> int:
    print(run(parse(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
