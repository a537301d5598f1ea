"""Helpers for the hardening suites: servers set up for them, tokens, the value ledger,
figures for the session summary, and process memory."""

from __future__ import annotations

import os
import re
import secrets
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.clients import TIMEOUT_SECONDS, tls
from support.inprocess import InProcessServer

READ = "OrganizationAPITokenRead"
MODIFY = "OrganizationAPITokenModify"
MANAGER = (READ, MODIFY)
TOKENS = "/api-tokens"
SELF = "/api-tokens/self"
INVALID_KEY = "invalid or missing API key"
VALUE_PATTERN = re.compile(r"apitk_[0-9A-Za-z]{49}")
"""A token value as the default prefix issues it (docs/decisions.md, "Values and storage")."""

TRUSTED_PROXY_ARGS = ("--trusted-proxies", "127.0.0.1/32,::1/128")
"""The tests act as the reverse proxy: X-Forwarded-For chooses the client address."""

HARDENED_ENV = {
    # The suites send many refused values from 127.0.0.1 on purpose: only the rate-limit
    # test (which sets its own threshold) wants the failure limiter in the way.
    "APITOKENS_AUTH_FAILURE_LIMIT": "1000000",
    "APITOKENS_LEAK_REPORT_LIMIT": "1000000",
    # The model, crash and load suites rotate tokens far more often than a person would.
    "APITOKENS_ROTATION_LIMIT": "1000000",
    "APITOKENS_LAST_USED_FLUSH_SECONDS": "0.5",
    # ... and wants their answers at once (the wait is tested in tests/service).
    "APITOKENS_REFUSAL_DELAY_SECONDS": "0",
}


def backend_params() -> list[Any]:
    """The backends of ``APITOKENS_TEST_BACKENDS`` (default both), for module-scoped fixtures."""
    raw = os.environ.get("APITOKENS_TEST_BACKENDS", "")
    names = [part.strip() for part in raw.split(",") if part.strip()] or ["sqlite", "postgresql"]
    return [
        pytest.param(name, id=name, marks=[pytest.mark.postgres] if name == "postgresql" else [])
        for name in dict.fromkeys(names)
        if name in ("sqlite", "postgresql")
    ]


def key(value: str, forwarded_for: str | None = None) -> dict[str, str]:
    headers = {"X-API-Key": value}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    return headers


def spec(name: str, permissions: Iterable[str] = (), **fields: Any) -> dict[str, Any]:
    """A ModifyAPIToken body."""
    return {"name": name, "permissions": list(permissions), **fields}


def create(
    client: httpx.Client, name: str, permissions: Iterable[str] = (), **fields: Any
) -> dict[str, Any]:
    """Create a token with ``client`` (asserting 200); the body carries ``value``."""
    response = client.post(TOKENS, json=spec(name, permissions, **fields))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def message(response: httpx.Response) -> str:
    text: str = response.json()["message"]
    return text


def refused(response: httpx.Response, status: int) -> str:
    """Assert ``status`` and an error body; return its message."""
    assert response.status_code == status, f"{response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/json"), response.text
    return message(response)


ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def forge(prefix: str = "apitk", secret: str | None = None) -> str:
    """A well-formed value (prefix, 43 characters, a correct CRC32) that nobody issued."""
    body = f"{prefix}_{secret or ''.join(secrets.choice(ALPHABET) for _ in range(43))}"
    return body + _base62(zlib.crc32(body.encode()), 6)


def rss_kib(pid: int) -> int:
    """Resident set size of process ``pid`` (``VmRSS`` in /proc/<pid>/status), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def server_pids(pid: int) -> list[int]:
    """``pid`` and its descendants (the server may run under ``setpriv``)."""
    children: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue
        children.setdefault(int(fields.get("PPid", "0").strip()), []).append(
            int(status.parent.name)
        )
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def server_rss_kib(pid: int) -> int:
    """RSS of the serving process: the largest of ``pid`` and its descendants."""
    sizes = []
    for candidate in server_pids(pid):
        try:
            sizes.append(rss_kib(candidate))
        except (OSError, RuntimeError):
            continue
    return max(sizes)


# -- the value ledger ---------------------------------------------------------------------


class ValueLedger:
    """Every token value the hardening suites saw issued (create, rotate, bootstrap).

    The no-leak checks look for each of them in logs, error bodies, metrics and database
    files. Thread-safe: load tests record from many threads.
    """

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str | None) -> None:
        if value:
            with self._lock:
                self._values.add(value)

    def record(self, response: httpx.Response) -> None:
        """Remember the ``value`` of a create or rotate answer."""
        if response.status_code != 200:
            return
        if not response.headers.get("content-type", "").startswith("application/json"):
            return
        try:
            body = response.json()
        except ValueError:
            return
        if isinstance(body, dict) and isinstance(body.get("value"), str):
            self.add(body["value"])

    def values(self) -> set[str]:
        with self._lock:
            return set(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def found_in(self, text: str) -> list[str]:
        """The ledger's values that occur in ``text`` (as-is), shortened for a message."""
        present = set(VALUE_PATTERN.findall(text)) & self.values()
        return sorted(value[:12] + "..." for value in present)

    def found_in_bytes(self, data: bytes) -> list[str]:
        return self.found_in(data.decode("latin-1"))


def _recorder(ledger: ValueLedger) -> Callable[[httpx.Response], None]:
    def hook(response: httpx.Response) -> None:
        response.read()
        ledger.record(response)

    return hook


def recording_app_client(
    ledger: ValueLedger, server: InProcessServer, token: str | None = None, **options: Any
) -> httpx.Client:
    """A client of the in-process app ``server`` that records every value it receives."""
    return server.client(token, event_hooks={"response": [_recorder(ledger)]}, **options)


def recording_client(
    ledger: ValueLedger, base_url: str, token: str | None = None, **options: Any
) -> httpx.Client:
    """An ``httpx.Client`` that records every value it receives in ``ledger``."""
    hook = _recorder(ledger)

    headers = {} if token is None else {"X-API-Key": token}
    return httpx.Client(
        base_url=base_url,
        headers=headers,
        timeout=options.pop("timeout", TIMEOUT_SECONDS),
        event_hooks={"response": [hook]},
        **{"verify": tls(), **options},
    )


# -- figures for the session summary ------------------------------------------------------


@dataclass
class Figures:
    """Measured numbers, printed at the end of the session ("hardening figures")."""

    rows: list[tuple[str, str]] = field(default_factory=list)

    def add(self, what: str, figure: str) -> None:
        self.rows.append((what, figure))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.rows)


def scan_files(paths: Sequence[Path], ledger: ValueLedger) -> dict[str, list[str]]:
    """Every file under ``paths`` that holds a ledger value (raw bytes), with the values."""
    hits: dict[str, list[str]] = {}
    for root in paths:
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in files:
            try:
                data = path.read_bytes()
            except OSError:
                continue
            found = ledger.found_in_bytes(data)
            if found:
                hits[str(path)] = found
    return hits
