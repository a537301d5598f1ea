"""schemathesis hooks for the CLI run (``SCHEMATHESIS_HOOKS=schemathesis_hooks``).

A fresh administrator token for the fuzzer whenever it lost the one it had: the stateful
phase rotates, updates and deletes ``self`` like any other token (as it must), and a run
whose key stopped working would test nothing but 401s from then on. The token is made the
way an operator makes the first one, ``apitokens bootstrap`` on the server's database, so
no key the fuzzer could revoke is involved. Environment:

- ``APITOKENS_ST_URL``: the server's base URL;
- ``APITOKENS_ST_DATABASE_URL``: its database;
- ``APITOKENS_ST_EXECUTABLE``: the ``apitokens`` command;
- ``APITOKENS_ST_VALUES``: a file each minted value is appended to (the test's ledger).
"""

from __future__ import annotations

import os
import subprocess
import threading
from typing import Any

import requests
import schemathesis

_lock = threading.Lock()
_current: dict[str, str] = {}
_minted = [0]


def _mint() -> dict[str, str]:
    _minted[0] += 1
    done = subprocess.run(
        [
            os.environ["APITOKENS_ST_EXECUTABLE"],
            "bootstrap",
            "--force",  # the database has its first admin already
            "--name",
            f"schemathesis-admin-{_minted[0]}",
            "--database-url",
            os.environ["APITOKENS_ST_DATABASE_URL"],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    value = done.stdout.strip()
    with open(os.environ["APITOKENS_ST_VALUES"], "a", encoding="utf-8") as ledger:
        ledger.write(value + "\n")
    me = requests.get(
        f"{os.environ['APITOKENS_ST_URL']}/api-tokens/self",
        headers={"X-API-Key": value},
        timeout=10,
    )
    me.raise_for_status()
    return {"value": value, "id": me.json()["id"]}


def current() -> dict[str, str]:
    with _lock:
        if not _current:
            _current.update(_mint())
        return dict(_current)


@schemathesis.auth(refresh_interval=None)
class FreshAdmin:
    def get(self, case: Any, ctx: Any) -> str:
        return current()["value"]

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "X-API-Key": data}


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """Forget the key once the run changed or revoked it (or it stopped working)."""
    sent = response.request.headers.get("X-API-Key")
    with _lock:
        if not _current or sent != _current["value"]:
            return
        target = (case.path_parameters or {}).get("id")
        changed_itself = (
            case.method.upper() != "GET"
            and target in ("self", _current["id"])
            and 200 <= response.status_code < 300
        )
        if changed_itself or response.status_code == 401:
            _current.clear()
