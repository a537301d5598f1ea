"""Fill an apitokens database fast: bulk INSERTs of valid rows through SQLAlchemy Core.

Run as ``python -m bench.fill URL COUNT [VALUES]``; prints one JSON object (the values and
ids the load needs, and the first VALUES token values) on stdout. Rows go through the real
schema (migrated with the real migrations) and every digest is
``ValueCodec(prefix).issue().digest``, so each row is exactly what ``POST /api-tokens``
would have stored. The first rows (the newest) are the ones the load uses: one administrator token
(every permission) and ``ROTATE_TARGETS`` narrow tokens to rotate; every token holds
``AlertRead`` and ``RuleRead``.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from apitokens.domain.permissions import UPSTREAM_PERMISSIONS
from apitokens.domain.values import ValueCodec
from apitokens.service.pagination import encode_position
from apitokens.storage.migrate import upgrade
from apitokens.storage.sql.schema import Base
from apitokens.storage.sql.store import build_engine

CHUNK = 5_000
ROTATE_TARGETS = 200
NARROW = ["AlertRead", "RuleRead"]
SYSTEM_ACTOR = {"created_by_id": "bench", "created_by_type": "system"}
PAGE = 100
TOKENS = Base.metadata.tables["tokens"]
SECRETS = Base.metadata.tables["token_secrets"]
SQLITE_CACHE_KIB = 512 * 1024


def _row(index: int, now: datetime, permissions: list[str], name: str) -> dict[str, Any]:
    created = now - timedelta(milliseconds=index)  # index 0 is the newest
    return {
        "id": str(uuid.uuid4()),
        "name": name,
        "permissions": permissions,
        "allowed_cidr_blocks": [],
        "created_at": created,
        **SYSTEM_ACTOR,
        "updated_at": created,
        "updated_by_id": "bench",
        "updated_by_type": "system",
        "rotated_at": None,
        "last_used_at": None,
        "last_used_ips": [],
        "expires_at": None,
    }


def fill(url: str, count: int, prefix: str = "apitk", values: int = 0) -> dict[str, Any]:
    """Store ``count`` tokens (at least ``ROTATE_TARGETS + 1``); return what the load needs.

    ``values``: also return the values of the first that many tokens (the administrator
    token first, then narrow ones), for loads that cycle over many distinct tokens.
    """
    count = max(count, ROTATE_TARGETS + 1)
    started = time.monotonic()
    engine = build_engine(url)
    upgrade(engine)
    codec = ValueCodec(prefix)
    now = datetime.now(UTC)
    deep_rank = max(0, count - 2 * PAGE - 1)  # a full page, near the end of the listing
    found: dict[str, Any] = {"rotate_ids": [], "values": []}
    for start in range(0, count, CHUNK):
        tokens, secrets = [], []
        for index in range(start, min(start + CHUNK, count)):
            if index == 0:
                row = _row(index, now, list(UPSTREAM_PERMISSIONS), "bench-admin")
            elif index <= ROTATE_TARGETS:
                row = _row(index, now, NARROW, f"bench-rotate-{index}")
            else:
                row = _row(index, now, NARROW, f"bench-{index}")
            issued = codec.issue()
            tokens.append(row)
            secrets.append(
                {"digest": issued.digest, "token_id": row["id"], "created_at": row["created_at"]}
            )
            if index < values:
                found["values"].append(issued.value)
            if index == 0:
                found["admin"] = issued.value
                found["admin_id"] = row["id"]
            elif index <= ROTATE_TARGETS:
                found["rotate_ids"].append(row["id"])
            if index == deep_rank:
                found["deep_cursor"] = encode_position((row["created_at"], row["id"]))
        with engine.begin() as connection:
            if engine.dialect.name == "sqlite":  # random keys into big indexes: a big cache
                connection.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            connection.execute(insert(TOKENS), tokens)
            connection.execute(insert(SECRETS), secrets)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    else:
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    engine.dispose()
    found["count"] = count
    found["deep_rank"] = deep_rank
    found["seconds"] = round(time.monotonic() - started, 1)
    return found


def main() -> None:
    url, count = sys.argv[1], int(sys.argv[2])
    values = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    json.dump(fill(url, count, values=values), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
