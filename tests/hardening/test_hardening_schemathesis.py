"""Generated requests from the service's own OpenAPI document, against a real server.

schemathesis reads ``/openapi.json`` from a running ``apitokens serve`` and generates
requests for every operation, valid ones (positive) and invalid ones (negative), and then
stateful sequences that follow the document's links (create, then get, update, rotate and
delete the token it made). Every answer must pass:

- ``not_a_server_error``: no 5xx, ever;
- ``status_code_conformance``: the status is one the document lists for the operation;
- ``content_type_conformance``: the body has the documented media type;
- ``response_schema_conformance``: the body matches the documented schema (error bodies
  included: ``{"message": ..., "code": ...}``);
- in sequences also ``use_after_free`` (a deleted token stays gone) and
  ``ensure_resource_availability`` (a created token can be read at once).

Failures are collected, not raised at the first one, so that one run reports every
distinct problem with a command that reproduces it. The admin key is the auth; generated
requests may not delete, rotate or update the admin token itself (a fuzzer that revokes its
own key tests nothing afterwards), so those are redirected to an id that does not exist.
"""

from __future__ import annotations

import collections
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hardening_support import Figures, ValueLedger
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Flaky, Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ensure_resource_availability,
    response_schema_conformance,
    status_code_conformance,
    use_after_free,
)

from support.processes import RunningServer

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
STATEFUL_CHECKS = [*CHECKS, use_after_free, ensure_resource_availability]

# Examples per operation and generation mode, and stateful scenarios, per backend. SQLite
# gets the larger share; PostgreSQL adds what only it can refuse (NUL in text, int8 range).
OPERATION_EXAMPLES = {"sqlite": 100, "postgresql": 40}
STATEFUL_SCENARIOS = {"sqlite": 100, "postgresql": 50}
STATEFUL_STEPS = 12
MAX_RESTARTS = 25


@dataclass
class Harness:
    """Calls, counts and failures of one run against one server."""

    base_url: str
    admin: str
    admin_id: str
    ledger: ValueLedger
    session: requests.Session = field(default_factory=requests.Session)
    statuses: collections.Counter[tuple[str, int]] = field(default_factory=collections.Counter)
    failures: dict[str, str] = field(default_factory=dict)
    scenarios: int = 0
    restarts: int = 0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def protect_admin(self, case: Case) -> None:
        """Send changes aimed at the admin token (by id or ``self``) to a missing id."""
        target = (case.path_parameters or {}).get("id")
        if case.method.upper() != "GET" and target in ("self", self.admin_id):
            case.path_parameters = {**(case.path_parameters or {}), "id": str(uuid.uuid4())}

    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.admin}

    def observe(self, case: Case, response: Any) -> None:
        self.statuses[(case.operation.label, response.status_code)] += 1
        body = getattr(response, "content", b"") or b""
        if b'"value"' in body:
            with contextlib.suppress(ValueError, AttributeError):
                self.ledger.add(response.json().get("value"))

    def fail(self, case: Case, error: BaseException) -> None:
        lines = [line for line in str(error).splitlines() if line.strip()]
        summary = f"{case.operation.label}: {lines[0] if lines else type(error).__name__}"
        if summary not in self.failures:
            command = case.as_curl_command().replace(self.admin, "$ADMIN")
            self.failures[summary] = "\n".join([*lines[:12], f"reproduce: {command}"])

    def report(self) -> str:
        return "\n\n".join(f"{key}\n{detail}" for key, detail in self.failures.items())


@pytest.fixture
def fuzzed(hardened_server: RunningServer, ledger: ValueLedger) -> tuple[Harness, Any]:
    """A fresh hardened server on the test's backend, its document loaded by schemathesis."""
    schema = schemathesis.openapi.from_url(f"{hardened_server.url}/openapi.json")
    me = requests.get(
        f"{hardened_server.url}/api-tokens/self",
        headers={"X-API-Key": hardened_server.admin},
        timeout=10,
    )
    me.raise_for_status()
    harness = Harness(hardened_server.url, hardened_server.admin, me.json()["id"], ledger)
    return harness, schema


def _settings(examples: int, **extra: Any) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        **extra,
    )


def _run_operation(harness: Harness, operation: Any, mode: GenerationMode, examples: int) -> None:
    @_settings(examples)
    @given(case=operation.as_strategy(generation_mode=mode))
    def one(case: Case) -> None:
        harness.protect_admin(case)
        try:
            response = case.call(session=harness.session, headers=harness.headers())
        except requests.RequestException as error:
            harness.fail(case, error)
            return
        harness.observe(case, response)
        try:
            case.validate_response(response, checks=CHECKS, headers=harness.headers())
        except (FailureGroup, AssertionError) as error:
            harness.fail(case, error)

    with contextlib.suppress(Unsatisfiable):  # nothing to negate: positive mode covers it
        one()


def _state_machine(harness: Harness, schema: Any) -> type:
    base: type = schema.as_state_machine()

    class Machine(base):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            super().setup()
            harness.scenarios += 1

        def before_call(self, case: Case) -> None:
            harness.protect_admin(case)

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"session": harness.session, "headers": harness.headers()}

        def after_call(self, response: Any, case: Case) -> None:
            super().after_call(response, case)
            harness.observe(case, response)

        def validate_response(
            self, response: Any, case: Case, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            try:
                case.validate_response(
                    response,
                    checks=STATEFUL_CHECKS,
                    headers=harness.headers(),
                    transport_kwargs=kwargs or None,
                    recorder=getattr(self, "recorder", None),
                )
            except (FailureGroup, AssertionError) as error:
                harness.fail(case, error)

    return Machine


def _still_admin(harness: Harness) -> None:
    """The run must end with the admin key still working (else it tested only 401s)."""
    answer = harness.session.get(f"{harness.base_url}/api-tokens/self", headers=harness.headers())
    assert answer.status_code == 200, answer.text


def _summary(harness: Harness) -> str:
    by_status: collections.Counter[int] = collections.Counter()
    for (_label, status), count in harness.statuses.items():
        by_status[status] += count
    return ", ".join(f"{status}: {count}" for status, count in sorted(by_status.items()))


def test_schemathesis_operations_hold_their_documented_contract(
    fuzzed: tuple[Harness, Any], backend: str, figures: Figures
) -> None:
    """Every operation, positive and negative generated input: no 5xx, nothing undocumented."""
    harness, schema = fuzzed
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6, "the document lost operations"
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _run_operation(harness, operation, mode, OPERATION_EXAMPLES[backend])
    elapsed = time.monotonic() - started
    figures.add(
        f"schemathesis operations ({backend})",
        f"{harness.requests} requests in {elapsed:.1f} s, failures {len(harness.failures)}; "
        f"{_summary(harness)}",
    )
    assert not harness.failures, harness.report()
    assert harness.statuses[("POST /api-tokens", 200)] > 0, "no generated create succeeded"
    assert harness.requests >= len(operations) * OPERATION_EXAMPLES[backend]
    _still_admin(harness)


def test_schemathesis_stateful_sequences_follow_the_links(
    fuzzed: tuple[Harness, Any], backend: str, figures: Figures
) -> None:
    """create -> get/update/rotate/delete by the returned id, and on: every answer checked."""
    harness, schema = fuzzed
    started = time.monotonic()
    # Sequences are built from valid requests (invalid ones are the operations test's job),
    # so that they reach deep: a token created, changed, rotated, then deleted.
    schema.config.generation.update(modes=[GenerationMode.POSITIVE])
    machine = _state_machine(harness, schema)
    wanted = STATEFUL_SCENARIOS[backend]
    # The server's state makes a replayed sequence answer differently (a list that has grown,
    # a token deleted meanwhile): Hypothesis then stops with Flaky. Like schemathesis's own
    # runner, start again for the scenarios still owed.
    while harness.scenarios < wanted and harness.restarts < MAX_RESTARTS:
        try:
            machine.run(
                settings=_settings(wanted - harness.scenarios, stateful_step_count=STATEFUL_STEPS)
            )
        except Flaky:
            harness.restarts += 1
        else:
            break
    elapsed = time.monotonic() - started
    linked = sum(
        count
        for (label, status), count in harness.statuses.items()
        if label.startswith(("GET /api-tokens/{id}", "POST /api-tokens/{id}", "DELETE"))
        and status in (200, 204)
    )
    figures.add(
        f"schemathesis stateful ({backend})",
        f"{harness.requests} requests, {harness.scenarios} scenarios in {elapsed:.1f} s, "
        f"{linked} answered 2xx on a linked id, failures {len(harness.failures)}; "
        f"{_summary(harness)}",
    )
    assert not harness.failures, harness.report()
    assert linked > 0, "no sequence reached a created token through a link"
    _still_admin(harness)
