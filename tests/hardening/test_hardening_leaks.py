"""No leaks: a token value exists in exactly two places, the answer that issued it and the
caller's hands. Not in a log line, an error message, /metrics, the audit trail, or the
database files (only SHA-256 digests are stored).

The traffic below puts values everywhere a careless service might copy them: in headers
that succeed and fail, rotated out, deleted, from forbidden addresses, in the wrong header,
in paths, query strings and bodies, in leaked-value reports. Then every place is searched
for every value issued. (Every hardening test also checks its servers' logs at teardown.)

And: unknown, deleted and rotated-out values get the same status, headers and message.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hardening_support import (
    INVALID_KEY,
    MANAGER,
    READ,
    SELF,
    TOKENS,
    Figures,
    ValueLedger,
    create,
    forge,
    key,
    refused,
    scan_files,
    spec,
)

from support.databases import database_name, sqlite_path
from support.inprocess import InProcessServer
from support.postgres import OS_USER, PostgresCluster
from support.protocols import AppFactory

ClientFactory = Callable[..., httpx.Client]
LEAK_ENV = {"APITOKENS_LOG_LEVEL": "debug"}


def _traffic(server: InProcessServer, client: ClientFactory) -> list[str]:
    """Issue values and spread them everywhere; return every error message answered."""
    admin = client(server, server.admin)
    anonymous = client(server)
    messages: list[str] = []

    def note(answer: httpx.Response) -> httpx.Response:
        if answer.status_code >= 400 and answer.headers.get("content-type", "").startswith(
            "application/json"
        ):
            messages.append(answer.text)
        return answer

    tokens = [create(admin, f"leak-{n}", MANAGER) for n in range(6)]
    fenced = create(admin, "fenced", [READ], allowedCIDRBlocks=["203.0.113.0/24"])
    values = [token["value"] for token in tokens]
    for value in values:  # successes: usage is recorded and flushed
        assert admin.get(SELF, headers=key(value, "203.0.113.9")).status_code == 200
    note(admin.get(SELF, headers=key(fenced["value"], "198.51.100.1")))  # forbidden address
    rotated = admin.post(f"{TOKENS}/{tokens[0]['id']}/rotate").json()["value"]
    graced = admin.post(
        f"{TOKENS}/{tokens[1]['id']}/rotate", params={"gracePeriodSeconds": 1}
    ).json()["value"]
    assert admin.delete(f"{TOKENS}/{tokens[2]['id']}").status_code == 204
    note(admin.get(SELF, headers=key(values[0])))  # rotated out: an audit event
    note(admin.get(SELF, headers=key(values[2])))  # deleted
    note(admin.get(SELF, headers=key(values[3] + "x")))  # malformed
    note(admin.get(SELF, headers={"Authorization": f"Bearer {values[3]}"}))
    note(anonymous.get("/verify", headers={"Authorization": f"Bearer {values[3]}"}))
    note(anonymous.get("/verify", headers={"Authorization": f"Bearer {values[2]}"}))
    note(anonymous.get("/verify", params={"permission": values[3]}, headers=key(values[3])))
    # Values where ids, names, permissions, blocks, cursors and filters go.
    note(admin.get(f"{TOKENS}/{values[3]}"))
    note(admin.delete(f"{TOKENS}/{values[3]}"))
    note(admin.get(f"/nowhere/{values[3]}"))
    note(admin.get(TOKENS, params={"cursor": values[3]}))
    note(admin.get(TOKENS, params={"limit": values[3]}))
    note(admin.get("/audit-events", params={"tokenId": values[3], "action": values[3]}))
    note(admin.post(TOKENS, json=spec("ok", [values[3]])))
    note(admin.post(TOKENS, json=spec("ok", [], allowedCIDRBlocks=[values[3]])))
    note(admin.post(TOKENS, json={**spec("ok", []), values[3]: 1}))
    note(admin.post(TOKENS, json=spec("ok", [], expiresAt=values[3])))
    note(admin.post(TOKENS, content=f'{{"name": "{values[3]}"'.encode()))
    note(admin.post(f"{TOKENS}/{tokens[3]['id']}/rotate", params={"gracePeriodSeconds": values[3]}))
    note(admin.get(SELF, headers=key(values[4], values[3])))  # in X-Forwarded-For
    note(admin.get(SELF, headers={"X-API-Key": values[4], "User-Agent": values[3]}))
    # Leaked-value reports: a live one (revoked), a rotated-out one, junk around one.
    note(anonymous.post("/leaked-values", json={"value": values[5]}))
    note(anonymous.post("/leaked-values", json={"value": values[0]}))
    note(anonymous.post("/leaked-values", json={"value": f"see {values[4]} here"}))
    note(anonymous.post("/leaked-values", json={"valeu": values[4]}))
    # Expiry, and a rotation by the token itself.
    soon = create(admin, "soon", [READ], expiresAt="2099-01-01T00:00:00Z")
    note(admin.get(SELF, headers=key(soon["value"])))
    self_rotated = client(server, rotated).post(f"{SELF}/rotate").json()["value"]
    assert admin.get(SELF, headers=key(self_rotated)).status_code == 200
    assert admin.get(SELF, headers=key(graced)).status_code == 200
    server.flush()  # the usage and the audit events of all of it are written
    return messages


def _database_dump(server: InProcessServer, cluster: PostgresCluster | None, out: Path) -> Path:
    """The database's own files, or for PostgreSQL a pg_dump and the data directory; for
    the in-memory store, a file with the repr of everything it holds."""
    if server.store is not None:
        dump = out / "memory-store.txt"
        dump.write_text(repr(vars(server.store)))
        assert "leak-1" in dump.read_text()  # the dump is of the right store
        return dump
    if cluster is None:
        return sqlite_path(server.database_url).parent
    with cluster.connect() as conn:
        conn.execute("CHECKPOINT")  # table and WAL pages on disk, not only in shared buffers
    done = subprocess.run(
        [
            *(["runuser", "-u", OS_USER, "--"] if cluster.as_os_user else []),
            str(cluster.bindir / "pg_dump"),
            "--host",
            cluster.host,
            "--port",
            str(cluster.port),
            "--username",
            "postgres",
            database_name(server.database_url),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    dump = out / "pg_dump.sql"
    dump.write_bytes(done.stdout)
    assert b"token_secrets" in done.stdout  # the dump is of the right database
    return dump


@pytest.mark.app_backends("memory", "sqlite", "postgresql")
def test_no_value_in_logs_errors_metrics_audit_or_database_files(
    hardened_app_factory: AppFactory,
    app_backend: str,
    client: ClientFactory,
    ledger: ValueLedger,
    figures: Figures,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    server = hardened_app_factory(env=LEAK_ENV)
    messages = _traffic(server, client)
    issued = len(ledger)
    admin = client(server, server.admin)

    assert messages, "the traffic produced no error messages to inspect"
    for text in messages:
        assert not ledger.found_in(text), f"a value in an error message: {text}"
    metrics = admin.get("/metrics")
    assert metrics.status_code == 200
    assert not ledger.found_in(metrics.text)
    events = admin.get("/audit-events", params={"limit": 1000})
    assert events.status_code == 200 and len(events.json()["results"]) > 5
    assert not ledger.found_in(events.text)
    listing = admin.get(TOKENS, params={"limit": 1000})
    assert not ledger.found_in(listing.text)
    assert not ledger.found_in(admin.get("/openapi.json").text)

    server.stop()  # the last flush and the shutdown lines are in the log and the files now
    assert not ledger.found_in(server.log_text())
    assert "authentication refused" in server.log_text()  # debug logging really ran
    cluster = request.getfixturevalue("pg_cluster") if app_backend == "postgresql" else None
    places = [_database_dump(server, cluster, tmp_path)]
    if cluster is not None:
        places.append(cluster.datadir)
    hits = scan_files(places, ledger)
    assert not hits, f"token values in database files: {hits}"
    scanned = sum(
        p.stat().st_size
        for root in places
        for p in ([root] if root.is_file() else root.rglob("*"))
        if p.is_file()
    )
    figures.add(
        f"no-leak scan ({app_backend})",
        f"{issued} values searched in {len(messages)} error bodies, metrics, audit, log, "
        f"{scanned / 1e6:.1f} MB of database files",
    )


def _answer(client: httpx.Client, value: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    response = client.get(SELF, headers=key(value))
    elapsed = time.perf_counter() - started
    shape = {
        "status": response.status_code,
        "body": response.json(),
        "headers": sorted(
            (name, value)
            for name, value in response.headers.items()
            if name not in ("date", "content-length")
        ),
    }
    return elapsed, shape


def test_unknown_and_revoked_values_get_identical_answers(
    hardened_app: InProcessServer, client: ClientFactory, figures: Figures, app_backend: str
) -> None:
    admin = client(hardened_app, hardened_app.admin)
    unknown = [forge() for _ in range(20)]  # well-formed, never issued
    deleted, rotated_out = [], []
    for n in range(20):
        token = create(admin, f"gone-{n}", [READ])
        assert admin.get(SELF, headers=key(token["value"])).status_code == 200
        if n % 2:
            assert admin.delete(f"{TOKENS}/{token['id']}").status_code == 204
            deleted.append(token["value"])
        else:
            assert admin.post(f"{TOKENS}/{token['id']}/rotate").status_code == 200
            rotated_out.append(token["value"])
    shapes: dict[str, list[dict[str, Any]]] = {}
    times: dict[str, list[float]] = {}
    for kind, values in (("unknown", unknown), ("deleted", deleted), ("rotated", rotated_out)):
        for _round in range(3):
            for value in values:
                elapsed, shape = _answer(admin, value)
                shapes.setdefault(kind, []).append(shape)
                times.setdefault(kind, []).append(elapsed)
    reference = shapes["unknown"][0]
    assert reference["status"] == 401 and reference["body"]["message"] == INVALID_KEY
    for kind, seen in shapes.items():
        for shape in seen:
            assert shape == reference, f"{kind} answered differently: {shape} vs {reference}"
    figures.add(
        f"401 median latency unknown/deleted/rotated-out, in process ({app_backend})",
        " / ".join(f"{statistics.median(times[k]) * 1000:.2f} ms" for k in shapes),
    )
    refused(admin.get(SELF, headers=key("")), 401)
