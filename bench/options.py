"""The benchmark's settings, from the command line."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Options:
    tokens: int
    small_tokens: int
    duration: int
    warmup: int
    rounds: int
    write_seconds: int
    backends: tuple[str, ...]
    pin: bool
    save: str
    sections: frozenset[str] = frozenset(str(number) for number in range(1, 11))
    """The sections to measure ("1" to "10"); the report has only their rows."""
    pace: int = 0
    """Milliseconds each wrk connection waits between requests; 0 (measuring) for none."""
