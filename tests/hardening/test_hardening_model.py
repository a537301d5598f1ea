"""A model of the service: random sequences over HTTP, each answer checked against it.

Hypothesis drives create, update, rotate, delete, get and authenticate against one real
server, as random callers (the admin or any token made so far, by id or ``self``) from
random client addresses: the test is the trusted proxy and names the client in
``X-Forwarded-For`` (sometimes after a spoofed hop, which must be ignored). A small
in-memory model says what each answer must be: which values authenticate, with which
permissions, from which addresses, and who may do what to whom (docs/decisions.md,
"Authorization"). The model is written from the rules, not from the code.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hardening_support import INVALID_KEY, MODIFY, READ, SELF, TOKENS, Figures, ValueLedger
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from support.inprocess import InProcessServer

pytestmark = pytest.mark.slow

PERMISSIONS = (READ, MODIFY, "AlertRead", "UserModify")
CATALOG_ORDER = ("AlertRead", MODIFY, READ, "UserModify")  # the catalog's order

# What a caller writes -> the canonical block the service stores (docs/decisions.md).
BLOCKS = {
    "10.0.0.0/8": "10.0.0.0/8",
    "::ffff:10.0.0.0/104": "10.0.0.0/8",
    "192.168.1.7": "192.168.1.7/32",
    "203.0.113.0/24": "203.0.113.0/24",
    "2001:DB8::/32": "2001:db8::/32",
    "2001:db8:1::/48": "2001:db8:1::/48",
}
ADDRESSES = (
    "10.1.2.3",
    "::ffff:10.9.8.7",  # IPv4-mapped: must match as 10.9.8.7
    "192.168.1.7",
    "192.168.1.8",
    "203.0.113.77",
    "198.51.100.1",
    "2001:db8::5",
    "2001:db8:1::9",
    "2001:db9::1",
)
SPOOFED_HOP = "6.6.6.6"  # what a client puts in front: never the client address
JUNK_VALUES = (
    "",
    "apitk_",
    "apitk_" + "A" * 49,  # the right shape, a wrong checksum
    "not-a-token",
)
# The rules are explored on the in-memory store; the SQL stores are checked to agree with
# it on fewer sequences, each a real database round trip per step.
EXAMPLES = {"memory": 40, "sqlite": 30, "postgresql": 25}
STEPS = 40


def _client_ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    parsed = ipaddress.ip_address(address)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


@dataclass
class ModelToken:
    id: str
    name: str
    permissions: frozenset[str]
    blocks: tuple[str, ...]
    value: str
    old_values: list[str] = field(default_factory=list)
    deleted: bool = False

    def allows(self, address: str) -> bool:
        if not self.blocks:
            return True
        client = _client_ip(address)
        return any(client in ipaddress.ip_network(block) for block in self.blocks)

    def holds(self, permission: str) -> bool:
        return permission in self.permissions

    def narrower(self, permissions: frozenset[str], blocks: tuple[str, ...]) -> bool:
        """Whether a token with these permissions and blocks is no wider than this one:
        a subset of its permissions, and (when it has blocks) every block inside one of
        its blocks; no blocks means any address."""
        if not permissions <= self.permissions:
            return False
        if not self.blocks:
            return True
        outer = [ipaddress.ip_network(block) for block in self.blocks]
        return bool(blocks) and all(
            any(
                inner.version == limit.version and inner.subnet_of(limit)  # type: ignore[arg-type]
                for limit in outer
            )
            for inner in (ipaddress.ip_network(block) for block in blocks)
        )


def _canonical(blocks: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(BLOCKS[block] for block in blocks))


def _ordered(permissions: frozenset[str]) -> list[str]:
    return [name for name in CATALOG_ORDER if name in permissions]


class ServiceModel(RuleBasedStateMachine):
    """Set ``client`` and ``admin`` (a ``ModelToken`` of the bootstrapped admin) first."""

    client: httpx.Client
    admin: ModelToken
    ledger: ValueLedger
    steps_run: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, ModelToken] = {}

    # -- helpers ----------------------------------------------------------------------

    def _call(
        self, method: str, path: str, actor: ModelToken, address: str, spoof: bool, **kw: Any
    ) -> httpx.Response:
        forwarded = f"{SPOOFED_HOP}, {address}" if spoof else address
        headers = {"X-API-Key": actor.value, "X-Forwarded-For": forwarded}
        response = self.client.request(method, path, headers=headers, **kw)
        type(self).steps_run += 1
        self.ledger.record(response)
        return response

    @staticmethod
    def _auth_refusal(actor: ModelToken, address: str) -> int | None:
        """401 for a caller whose value no longer works, 403 from outside its blocks."""
        if actor.deleted:
            return 401
        if not actor.allows(address):
            return 403
        return None

    def _check(self, response: httpx.Response, status: int, what: str) -> None:
        assert response.status_code == status, (
            f"{what}: expected {status}, got {response.status_code} {response.text}"
        )
        if status == 401:
            assert response.json()["message"] == INVALID_KEY, response.text

    def _check_body(self, body: dict[str, Any], token: ModelToken) -> None:
        assert body["id"] == token.id
        assert body["name"] == token.name
        assert body["permissions"] == _ordered(token.permissions)
        assert body["allowedCIDRBlocks"] == list(token.blocks)

    def _pick(self, data: st.DataObject, label: str) -> ModelToken:
        """A token made so far: a live one four times in five, else any (deleted ones too)."""
        made = list(self.model.values())
        live = [token for token in made if not token.deleted]
        if live and data.draw(st.integers(0, 4), label=f"{label} live?") != 0:
            return data.draw(st.sampled_from(live), label=label)
        return data.draw(st.sampled_from(made), label=label)

    def _actor(self, data: st.DataObject) -> ModelToken:
        """The admin one time in five; a live token holding OrganizationAPITokenModify two
        times in five (the interesting callers: narrower than what they act on); otherwise
        any token made so far."""
        if not self.model:
            return self.admin
        kind = data.draw(st.integers(0, 4), label="caller kind")
        managers = [t for t in self.model.values() if not t.deleted and t.holds(MODIFY)]
        if kind == 0:
            return self.admin
        if kind <= 2 and managers:
            return data.draw(st.sampled_from(managers), label="manager")
        return self._pick(data, "actor")

    @staticmethod
    def _address(data: st.DataObject, actor: ModelToken) -> str:
        """An address the caller may use two times in three, else any address."""
        allowed = [address for address in ADDRESSES if actor.allows(address)]
        if allowed and data.draw(st.integers(0, 2), label="allowed address?") != 0:
            return data.draw(st.sampled_from(allowed), label="address")
        return data.draw(st.sampled_from(ADDRESSES), label="address")

    # -- rules ------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        self.model = {}

    @rule(
        data=st.data(),
        permissions=st.sets(st.sampled_from(PERMISSIONS)),
        blocks=st.one_of(st.just([]), st.lists(st.sampled_from(sorted(BLOCKS)), max_size=3)),
        spoof=st.booleans(),
    )
    def create(
        self,
        data: st.DataObject,
        permissions: set[str],
        blocks: list[str],
        spoof: bool,
    ) -> None:
        actor = self._actor(data)
        address = self._address(data, actor)
        name = f"m-{len(self.model)}"
        body = {"name": name, "permissions": sorted(permissions), "allowedCIDRBlocks": blocks}
        response = self._call("POST", TOKENS, actor, address, spoof, json=body)
        expected = self._auth_refusal(actor, address)
        wider = not actor.narrower(frozenset(permissions), _canonical(blocks))
        if expected is None and (not actor.holds(MODIFY) or wider):
            expected = 403
        self._check(response, expected or 200, f"create by {actor.name}")
        if expected is not None:
            return
        created = response.json()
        token = ModelToken(
            created["id"], name, frozenset(permissions), _canonical(blocks), created["value"]
        )
        self._check_body(created, token)
        self.model[token.id] = token

    @precondition(lambda self: bool(self.model))
    @rule(
        data=st.data(),
        permissions=st.sets(st.sampled_from(PERMISSIONS)),
        blocks=st.one_of(st.none(), st.lists(st.sampled_from(sorted(BLOCKS)), max_size=2)),
        spoof=st.booleans(),
        by_self=st.booleans(),
    )
    def update(
        self,
        data: st.DataObject,
        permissions: set[str],
        blocks: list[str] | None,
        spoof: bool,
        by_self: bool,
    ) -> None:
        target = self._pick(data, "target")
        actor = self._actor(data)
        address = self._address(data, actor)
        own = actor.id == target.id
        path = SELF if own and by_self else f"{TOKENS}/{target.id}"
        body: dict[str, Any] = {"name": f"{target.name}+", "permissions": sorted(permissions)}
        if blocks is not None:
            body["allowedCIDRBlocks"] = blocks
        response = self._call("POST", path, actor, address, spoof, json=body)
        expected = self._auth_refusal(actor, address)
        result_blocks = target.blocks if blocks is None else _canonical(blocks)
        if expected is None:
            if not actor.holds(MODIFY):
                expected = 403
            elif target.deleted:
                expected = 404 if actor.holds(READ) else 403  # no probing without Read
            elif (
                not own and not actor.narrower(target.permissions, target.blocks)
            ) or not actor.narrower(frozenset(permissions), result_blocks):
                expected = 403
        self._check(response, expected or 200, f"update of {target.name} by {actor.name}")
        if expected is None:
            target.name = body["name"]
            target.permissions = frozenset(permissions)
            if blocks is not None:
                target.blocks = _canonical(blocks)
            self._check_body(response.json(), target)
            assert "value" not in response.json()

    @precondition(lambda self: bool(self.model))
    @rule(
        data=st.data(),
        spoof=st.booleans(),
        by_self=st.booleans(),
    )
    def rotate(self, data: st.DataObject, spoof: bool, by_self: bool) -> None:
        target = self._pick(data, "target")
        actor = self._actor(data)
        address = self._address(data, actor)
        own = actor.id == target.id
        path = f"{SELF if own and by_self else f'{TOKENS}/{target.id}'}/rotate"
        response = self._call("POST", path, actor, address, spoof)
        expected = self._auth_refusal(actor, address)
        if expected is None and not own:
            if not actor.holds(MODIFY):
                expected = 403
            elif target.deleted:
                expected = 404 if actor.holds(READ) else 403  # no probing without Read
            elif not actor.narrower(target.permissions, target.blocks):
                expected = 403
        self._check(response, expected or 200, f"rotation of {target.name} by {actor.name}")
        if expected is None:
            rotated = response.json()
            self._check_body(rotated, target)
            assert rotated["value"] != target.value
            target.old_values.append(target.value)
            target.value = rotated["value"]

    @precondition(lambda self: bool(self.model))
    @rule(
        data=st.data(),
        spoof=st.booleans(),
        by_self=st.booleans(),
    )
    def delete(self, data: st.DataObject, spoof: bool, by_self: bool) -> None:
        target = self._pick(data, "target")
        actor = self._actor(data)
        address = self._address(data, actor)
        own = actor.id == target.id
        path = SELF if own and by_self else f"{TOKENS}/{target.id}"
        response = self._call("DELETE", path, actor, address, spoof)
        expected = self._auth_refusal(actor, address)
        if expected is None and not own:
            if not actor.holds(MODIFY):
                expected = 403
            elif target.deleted:
                expected = 404
        self._check(response, expected or 204, f"deletion of {target.name} by {actor.name}")
        if expected is None:
            assert response.content == b""
            target.deleted = True

    @precondition(lambda self: bool(self.model))
    @rule(
        data=st.data(),
        spoof=st.booleans(),
    )
    def get(self, data: st.DataObject, spoof: bool) -> None:
        target = self._pick(data, "target")
        actor = self._actor(data)
        address = self._address(data, actor)
        response = self._call("GET", f"{TOKENS}/{target.id}", actor, address, spoof)
        expected = self._auth_refusal(actor, address)
        if expected is None and actor.id != target.id:
            if not actor.holds(READ):
                expected = 403
            elif target.deleted:
                expected = 404
        self._check(response, expected or 200, f"get of {target.name} by {actor.name}")
        if expected is None:
            self._check_body(response.json(), target)
            assert "value" not in response.json()

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data(), address=st.sampled_from(ADDRESSES), spoof=st.booleans())
    def authenticate(self, data: st.DataObject, address: str, spoof: bool) -> None:
        """Any value ever issued here (current, rotated out, deleted) or junk, as ``self``."""
        candidates: list[tuple[str, ModelToken | None]] = [(v, None) for v in JUNK_VALUES]
        for token in self.model.values():
            candidates.append((token.value, None if token.deleted else token))
            candidates.extend((old, None) for old in token.old_values)
        value, owner = data.draw(st.sampled_from(candidates), label="value")
        forwarded = f"{SPOOFED_HOP}, {address}" if spoof else address
        response = self.client.get(SELF, headers={"X-API-Key": value, "X-Forwarded-For": forwarded})
        type(self).steps_run += 1
        if owner is None:
            self._check(response, 401, "a value that must not work")
        elif not owner.allows(address):
            self._check(response, 403, f"{owner.name} from {address}")
        else:
            self._check(response, 200, f"{owner.name} from {address}")
            self._check_body(response.json(), owner)


def _machine(server: InProcessServer, client: httpx.Client, ledger: ValueLedger) -> type:
    me = client.get(SELF, headers={"X-API-Key": server.admin, "X-Forwarded-For": "10.1.2.3"})
    assert me.status_code == 200, me.text
    admin = ModelToken(
        me.json()["id"], "admin", frozenset(PERMISSIONS) | {"others"}, (), server.admin
    )

    class Model(ServiceModel):
        pass

    Model.client = client
    Model.admin = admin
    Model.ledger = ledger
    return Model


@pytest.mark.app_backends("memory", "sqlite", "postgresql")
def test_model_random_sequences_agree_with_the_rules(
    hardened_app: InProcessServer,
    client: Callable[..., httpx.Client],
    ledger: ValueLedger,
    app_backend: str,
    figures: Figures,
) -> None:
    backend = app_backend
    machine = _machine(hardened_app, client(hardened_app), ledger)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=EXAMPLES[backend],
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            # No shrinking: on a database it can take minutes; the failing steps
            # are printed as they ran.
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        ),
    )
    figures.add(f"model test ({backend})", f"{machine.steps_run} checked requests")
    assert machine.steps_run > EXAMPLES[backend] * 5
