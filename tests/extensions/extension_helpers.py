"""Small helpers for the extension tests: tokens, audit events, logs, waiting."""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx

from apitokens.domain.permissions import UPSTREAM_PERMISSIONS
from support.inprocess import InProcessServer

READ = "OrganizationAPITokenRead"
MODIFY = "OrganizationAPITokenModify"
INVALID = "invalid or missing API key"
EXTRA_PERMISSIONS = "reports:read,reports:write"
FLUSH_SECONDS = "0.2"
TRUSTED_LOOPBACK = ("--trusted-proxies", "127.0.0.1/32")
T = TypeVar("T")
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def extension_env() -> dict[str, str]:
    """Settings most extension tests want: fast usage flushes, an operator catalog."""
    return {
        "APITOKENS_LAST_USED_FLUSH_SECONDS": FLUSH_SECONDS,
        "APITOKENS_EXTRA_PERMISSIONS": EXTRA_PERMISSIONS,
    }


def create_token(
    admin: httpx.Client, name: str = "t", permissions: tuple[str, ...] = (), **fields: Any
) -> dict[str, Any]:
    """Create a token through the API (asserting 200); the body includes ``value``.

    Names outside the upstream catalog go in ``servicePermissions``, where the API takes them.
    """
    upstream = [name for name in permissions if name in UPSTREAM_PERMISSIONS]
    service = [name for name in permissions if name not in UPSTREAM_PERMISSIONS]
    if service:
        fields = {"servicePermissions": service, **fields}
    response = admin.post("/api-tokens", json={"name": name, "permissions": upstream, **fields})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def key(value: str) -> dict[str, str]:
    return {"X-API-Key": value}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def from_now(**delta: float) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)


def clock_from_now(server: InProcessServer, **delta: float) -> datetime:
    """``delta`` after the app's clock now."""
    return server.clock.now() + timedelta(**delta)


def sleep_until(moment: datetime, margin: float = 0.3) -> None:
    """Sleep until ``margin`` seconds after ``moment`` (an aware time)."""
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()) + margin)


def audit_events(admin: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = admin.get("/audit-events", params=params)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def wait_for(probe: Callable[[], T | None], timeout: float = 5.0, what: str = "condition") -> T:
    """Call ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def flushed_event(
    server: InProcessServer, admin: httpx.Client, action: str, **params: Any
) -> dict[str, Any]:
    """The newest audit event with ``action``, once pending events are written (a flush:
    events noticed on the request path are written with the usage)."""
    server.flush()
    events = audit_events(admin, action=action, **params)
    assert events, f"no audit event {action} with {params}"
    return events[0]


def log_records(log_text: str) -> list[dict[str, Any]]:
    """The server's JSON log lines (other lines are skipped)."""
    records = []
    for line in log_text.splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def refusal_reasons(log_text: str) -> list[str]:
    return [
        record["reason"]
        for record in log_records(log_text)
        if record.get("message") == "authentication refused"
    ]


def documented_checksum(body: str) -> str:
    """The checksum as docs/extensions.md describes it: CRC32 of ``<prefix>_<secret>``
    (ASCII), as six base62 digits, most significant first."""
    number, digits = zlib.crc32(body.encode("ascii")), []
    for _ in range(6):
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def well_formed(seed: str, prefix: str = "apitk") -> str:
    """A value of the right shape and checksum that no token has."""
    body = f"{prefix}_{(seed * 43)[:43]}"
    return body + documented_checksum(body)


def broken_checksum(value: str) -> str:
    return value[:-1] + ("A" if value[-1] != "A" else "B")
