"""schemathesis hooks for the CLI run (``SCHEMATHESIS_HOOKS=schemathesis_hooks``).

A fresh administrator token for the fuzzer whenever it lost the one it had: the stateful
phase rotates, updates and deletes ``self`` like any other token (as it must), and a run
whose key stopped working would test nothing but 401s from then on. The token is made the
way an operator makes the first one, ``apitokens bootstrap`` on the server's database, so
no key the fuzzer could revoke is involved. Environment:

- ``APITOKENS_ST_URL``: the server's base URL;
- ``APITOKENS_ST_DATABASE_URL``: its database;
- ``APITOKENS_ST_EXECUTABLE``: the ``apitokens`` command;
- ``APITOKENS_ST_VALUES``: a file each minted value is appended to (the test's ledger);
- ``APITOKENS_ST_FIRST``: the first of them, made by the test before the run (with the
  name the first mint gives, ``schemathesis-admin-1``; the same function the command runs,
  in the test's process): the run needs one from its first request, and the command's
  interpreter would be 1.2 s of the run.

And one strategy per regular expression (``_share_regex_strategies``).
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Callable
from typing import Any

import requests
import schemathesis

_lock = threading.Lock()
_current: dict[str, str] = {}
_minted = [0]


def _mint() -> dict[str, str]:
    _minted[0] += 1
    value = os.environ.get("APITOKENS_ST_FIRST", "") if _minted[0] == 1 else ""
    value = value or _bootstrap(f"schemathesis-admin-{_minted[0]}")
    with open(os.environ["APITOKENS_ST_VALUES"], "a", encoding="utf-8") as ledger:
        ledger.write(value + "\n")
    me = requests.get(
        f"{os.environ['APITOKENS_ST_URL']}/api-tokens/self",
        headers={"X-API-Key": value},
        timeout=10,
    )
    me.raise_for_status()
    return {"value": value, "id": me.json()["id"]}


def _bootstrap(name: str) -> str:
    done = subprocess.run(
        [
            os.environ["APITOKENS_ST_EXECUTABLE"],
            "bootstrap",
            "--force",  # the database has its first admin already
            "--name",
            name,
            "--database-url",
            os.environ["APITOKENS_ST_DATABASE_URL"],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


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


def _share_regex_strategies() -> None:
    """Build Hypothesis's strategy for a regular expression once per run, not once per use.

    ``st.from_regex`` builds its strategy afresh unless Hypothesis's own small cache (1,024
    strategies) still holds it, and the document's ``allowedCIDRBlocks`` pattern (14 KB:
    every prefix length of IPv4 and IPv6, without host bits) alone is tens of thousands of
    them. schemathesis rebuilds the request bodies' strategies whenever a response teaches
    it something, so that pattern's strategy was built 12 times a run, 0.6 s each: two
    thirds of the fuzzing phase, on either store (it was most of the PostgreSQL run's
    time). Here each (pattern, flags, match mode, alphabet, options) is built once and
    reused. A strategy keeps no state between draws, so the run sends the same requests
    from the same seed as without this (compared request by request). Should Hypothesis
    move this function, the run only takes longer.
    """
    try:
        from hypothesis.strategies._internal import regex as module
    except ImportError:
        return
    build: Callable[..., Any] | None = getattr(module, "regex_strategy", None)
    if build is None:
        return
    built: dict[tuple[object, ...], Any] = {}

    def regex_strategy(regex: Any, fullmatch: bool, **options: Any) -> Any:
        compiled = regex if isinstance(regex, re.Pattern) else re.compile(regex)
        alphabet = options.get("alphabet")
        key = (
            compiled.pattern,
            compiled.flags,
            fullmatch,
            type(alphabet),
            repr(getattr(alphabet, "intervals", alphabet)),  # the characters it draws from
            tuple(sorted((name, value) for name, value in options.items() if name != "alphabet")),
        )
        if key not in built:
            built[key] = build(regex, fullmatch, **options)
        return built[key]

    module.regex_strategy = regex_strategy


_share_regex_strategies()
