"""Crashes lose nothing: SIGKILL the server in the middle of a stream of changes.

Four writers create, rename, rotate and delete tokens as fast as the server answers, with
some requests that must be refused mixed in (escalation, bad bodies, missing ids). The
server is killed with SIGKILL mid-stream and started again on the same database. Then:

- every change answered 2xx is there: created ids exist with their value working, renamed
  tokens carry the new name, rotated values work and the values before them do not,
  deleted ids are 404 and their values refused;
- every change answered with an error (4xx) left no trace;
- a request in flight at the kill (sent, no answer) happened entirely or not at all: a
  create appears at most once, a rotation left exactly one of the two values working, a
  rename shows one of the two names.

Each writer owns its tokens, so the expected state of each token is known exactly.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from hardening_support import MANAGER, READ, SELF, TOKENS, Figures, ValueLedger, create, key

from support.clients import tls
from support.processes import RunningServer
from support.protocols import ServerFactory

ClientFactory = Callable[..., httpx.Client]
WRITERS = 4
RUN_BEFORE_KILL_SECONDS = 1.5


class Unanswered(Exception):
    """The request may have reached the server, but no answer came back."""


@dataclass
class Owned:
    """What one token must look like after the restart."""

    id: str
    name: str
    value: str
    old_values: list[str] = field(default_factory=list)
    deleted: bool = False
    pending: str | None = None  # "rotate" | "rename:<name>" | "delete": in flight at the kill


@dataclass
class Writer:
    number: int
    server_url: str
    admin: str
    narrow: str
    ledger: ValueLedger
    rng: random.Random
    tokens: list[Owned] = field(default_factory=list)
    created_names: set[str] = field(default_factory=set)
    refused_names: set[str] = field(default_factory=set)
    maybe_names: set[str] = field(default_factory=set)
    answered: int = 0
    server_errors: list[str] = field(default_factory=list)
    stopped: bool = False

    def run(self, stop: threading.Event) -> None:
        with httpx.Client(base_url=self.server_url, timeout=10, verify=tls()) as client:
            while not stop.is_set() and not self.stopped:
                try:
                    self._one(client)
                except Unanswered:
                    self.stopped = True
                except httpx.ConnectError:
                    self.stopped = True  # never sent: nothing to account for

    def _send(self, client: httpx.Client, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = kw.pop("headers", key(self.admin))
        try:
            answer = client.request(method, path, headers=headers, **kw)
        except httpx.ConnectError:
            raise
        except httpx.TransportError as error:
            raise Unanswered() from error
        self.ledger.record(answer)
        self.answered += 1
        if answer.status_code >= 500:
            self.server_errors.append(f"{method} {path}: {answer.status_code} {answer.text}")
        return answer

    def _live(self) -> list[Owned]:
        return [token for token in self.tokens if not token.deleted]

    def _one(self, client: httpx.Client) -> None:
        live = self._live()
        choice = self.rng.random()
        if choice < 0.25 or len(live) < 2:
            self._create(client)
        elif choice < 0.45:
            self._rotate(client, self.rng.choice(live))
        elif choice < 0.60:
            self._rename(client, self.rng.choice(live))
        elif choice < 0.75:
            self._delete(client, self.rng.choice(live))
        else:
            self._refused(client, self.rng.choice(live))

    def _create(self, client: httpx.Client) -> None:
        name = f"w{self.number}-{uuid.uuid4().hex[:10]}"
        try:
            answer = self._send(client, "POST", TOKENS, json={"name": name, "permissions": [READ]})
        except Unanswered:
            self.maybe_names.add(name)
            raise
        assert answer.status_code == 200, answer.text
        body = answer.json()
        self.created_names.add(name)
        self.tokens.append(Owned(body["id"], name, body["value"]))

    def _rotate(self, client: httpx.Client, token: Owned) -> None:
        try:
            answer = self._send(client, "POST", f"{TOKENS}/{token.id}/rotate")
        except Unanswered:
            token.pending = "rotate"
            raise
        assert answer.status_code == 200, answer.text
        token.old_values.append(token.value)
        token.value = answer.json()["value"]

    def _rename(self, client: httpx.Client, token: Owned) -> None:
        name = f"{token.name.split('~')[0]}~{uuid.uuid4().hex[:6]}"
        try:
            answer = self._send(
                client, "POST", f"{TOKENS}/{token.id}", json={"name": name, "permissions": [READ]}
            )
        except Unanswered:
            token.pending = f"rename:{name}"
            raise
        assert answer.status_code == 200, answer.text
        token.name = name

    def _delete(self, client: httpx.Client, token: Owned) -> None:
        try:
            answer = self._send(client, "DELETE", f"{TOKENS}/{token.id}")
        except Unanswered:
            token.pending = "delete"
            raise
        assert answer.status_code == 204, answer.text
        token.deleted = True

    def _refused(self, client: httpx.Client, token: Owned) -> None:
        """A change that must be refused, and so leave no trace whenever it is answered."""
        name = f"w{self.number}-refused-{uuid.uuid4().hex[:10]}"
        kind = self.rng.randrange(4)
        try:
            if kind == 0:  # escalation by a narrow token
                answer = self._send(
                    client,
                    "POST",
                    TOKENS,
                    json={"name": name, "permissions": [*MANAGER, "UserModify"]},
                    headers=key(self.narrow),
                )
                expected = 403
            elif kind == 1:  # a body that does not validate
                answer = self._send(
                    client,
                    "POST",
                    TOKENS,
                    json={"name": name, "permissions": ["NoSuchPermission"]},
                )
                expected = 400
            elif kind == 2:  # a rename with a bad block: the name must not stick
                answer = self._send(
                    client,
                    "POST",
                    f"{TOKENS}/{token.id}",
                    json={"name": name, "permissions": [READ], "allowedCIDRBlocks": ["10.0.0.1/8"]},
                )
                expected = 400
            else:  # a rotation of an id that does not exist
                answer = self._send(client, "POST", f"{TOKENS}/{uuid.uuid4()}/rotate")
                expected = 404
        finally:
            self.refused_names.add(name)  # answered or not, a refused change never applies
        assert answer.status_code == expected, answer.text


def _all_tokens(client: httpx.Client) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 1000}
    while True:
        page = client.get(TOKENS, params=params)
        assert page.status_code == 200, page.text
        found.extend(page.json()["results"])
        if not page.json().get("next"):
            return found
        params["cursor"] = page.json()["next"]


def _works(client: httpx.Client, value: str, token_id: str) -> bool:
    answer = client.get(SELF, headers=key(value))
    assert answer.status_code in (200, 401), answer.text
    return answer.status_code == 200 and answer.json()["id"] == token_id


def _verify(writer: Writer, admin: httpx.Client, by_name: dict[str, list[dict[str, Any]]]) -> int:
    """Check one writer's tokens after the restart; return how many were in flight."""
    in_flight = 0
    for name in writer.refused_names:
        assert name not in by_name, f"a refused change left {name!r} behind"
    for name in writer.maybe_names:
        in_flight += 1
        assert len(by_name.get(name, [])) <= 1, f"{name!r} created twice"
    for token in writer.tokens:
        for stale in token.old_values:
            assert not _works(admin, stale, token.id), f"{token.name}: a rotated-out value works"
        stored = admin.get(f"{TOKENS}/{token.id}")
        if token.pending is not None:
            in_flight += 1
        if token.pending == "delete":
            assert stored.status_code in (200, 404), stored.text
            assert _works(admin, token.value, token.id) == (stored.status_code == 200)
            continue
        if token.deleted:
            assert stored.status_code == 404, f"{token.name}: deleted, yet {stored.text}"
            assert not _works(admin, token.value, token.id)
            continue
        assert stored.status_code == 200, f"{token.name} ({token.id}) lost: {stored.text}"
        if token.pending == "rotate":
            # Exactly one outcome: the old value still works, or it was rotated out (and
            # its successor, never received, is the only one).
            old_works = _works(admin, token.value, token.id)
            assert old_works or stored.json()["rotatedAt"] is not None
        else:
            assert _works(admin, token.value, token.id), f"{token.name}: its value lost"
        names = {token.name}
        if token.pending and token.pending.startswith("rename:"):
            names.add(token.pending.removeprefix("rename:"))
        assert stored.json()["name"] in names, f"{stored.json()['name']!r} not in {names}"
    return in_flight


def test_sigkill_mid_stream_loses_no_answered_change(
    hardened_factory: ServerFactory,
    database_url: str,
    backend: str,
    client: ClientFactory,
    ledger: ValueLedger,
    figures: Figures,
) -> None:
    server: RunningServer = hardened_factory(database_url)
    admin = client(server, server.admin)
    narrow = create(admin, "narrow-manager", MANAGER)["value"]
    writers = [
        Writer(n, server.url, server.admin, narrow, ledger, random.Random(n))
        for n in range(WRITERS)
    ]
    for writer in writers:  # each starts with a few tokens of its own
        for _ in range(3):
            name = f"w{writer.number}-seed-{uuid.uuid4().hex[:6]}"
            body = create(admin, name, [READ])
            writer.tokens.append(Owned(body["id"], name, body["value"]))
            writer.created_names.add(name)
    stop = threading.Event()
    threads = [threading.Thread(target=writer.run, args=(stop,)) for writer in writers]
    for thread in threads:
        thread.start()
    time.sleep(RUN_BEFORE_KILL_SECONDS)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    answered = sum(writer.answered for writer in writers)
    assert answered > 50, "too few changes before the kill to prove anything"
    for writer in writers:
        assert not writer.server_errors, writer.server_errors

    server.start()
    by_name: dict[str, list[dict[str, Any]]] = {}
    for token in _all_tokens(admin):
        by_name.setdefault(token["name"], []).append(token)
    assert all(len(tokens) == 1 for tokens in by_name.values()), "a name appears twice"
    in_flight = sum(_verify(writer, admin, by_name) for writer in writers)
    figures.add(
        f"SIGKILL mid-stream ({backend})",
        f"{answered} answered requests before the kill, all found; {in_flight} in flight",
    )
