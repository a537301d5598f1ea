"""The benchmark's table: rows collected during the run, rendered as Markdown."""

from __future__ import annotations

from dataclasses import dataclass

from bench.load import Result


@dataclass
class Row:
    section: str
    label: str
    result: Result | None = None
    figure: str = ""
    target: str = ""
    met: bool | None = None


def ratio_row(
    section: str, label: str, value: float, target: str, met: bool | None, note: str = ""
) -> Row:
    figure = f"**{value:.2f}x**" + (f" {note}" if note else "")
    return Row(section, label, None, figure, target, met)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _latency(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def table(rows: list[Row]) -> str:
    lines = [
        "| # | measurement | req/s | p50 ms | p99 ms | CPU µs/req | failed | figure | target "
        "| met |",
        "|---|---|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for row in rows:
        result = row.result
        cells = ["—", "—", "—", "—", "—"]
        if result is not None:
            cpu = "—" if result.cpu_us is None else f"{result.cpu_us:,.0f}"
            cells = [
                _number(result.rps),
                _latency(result.p50_ms),
                _latency(result.p99_ms),
                cpu,
                str(result.failed),
            ]
        met = "" if row.met is None else ("yes" if row.met else "**no**")
        lines.append(
            f"| {row.section} | {row.label} | {' | '.join(cells)} | {row.figure} | "
            f"{row.target} | {met} |"
        )
    return "\n".join(lines)


def settings_block(facts: dict[str, str]) -> str:
    return "\n".join(f"- {name}: {value}" for name, value in facts.items())
