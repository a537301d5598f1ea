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
