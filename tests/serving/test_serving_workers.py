"""``apitokens serve --workers 2``: several processes on one port behave as one service.

Every test holds one kept-alive connection to each worker (found through ``/proc``, see
``serving_support``), so what each worker does is checked, not whichever the kernel picks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from serving_support import WorkerConnections, call

from ops.metrics_scrape import Scrape
from support.processes import CLEAN_EXIT_STATUSES, RunningServer
from support.protocols import ServerFactory

WORKERS = 2
REVOCATION_BOUND_SECONDS = 1.0
SELF = "/api-tokens/self"
READ = "OrganizationAPITokenRead"
# Kept-alive connections must outlive the test's pauses; usage is flushed only at the stop.
ENV = {"APITOKENS_KEEP_ALIVE_SECONDS": "60", "APITOKENS_LAST_USED_FLUSH_SECONDS": "60"}


@pytest.fixture
def two_workers(server_factory: ServerFactory, database_url: str) -> RunningServer:
    return server_factory(database_url, env=ENV, args=["--workers", str(WORKERS)])


@pytest.fixture
def workers(two_workers: RunningServer) -> Iterator[WorkerConnections]:
    connections = WorkerConnections(two_workers, WORKERS)
    yield connections
    connections.close()


def _create(workers: WorkerConnections, admin: str, name: str) -> dict[str, object]:
    pid = workers.pids[0]
    body = {"name": name, "permissions": [READ]}
    answer = call(workers.check_still_on(pid), "POST", "/api-tokens", admin, body)
    assert answer.status == 200, answer.body
    created: dict[str, object] = answer.json()
    return created


def test_two_workers_behave_as_one_service(
    two_workers: RunningServer,
    workers: WorkerConnections,
    server_factory: ServerFactory,
    database_url: str,
) -> None:
    """One server per backend for the three promises (starting one costs seconds): the
    metrics are summed over the workers, every worker refuses a deleted value within 1 s,
    and a clean stop writes the usage every worker still held in memory."""
    metrics_are_summed_over_workers(two_workers, workers)
    every_worker_refuses_a_deleted_value_within_1s(two_workers, workers)
    clean_stop_loses_no_pending_last_used(two_workers, workers, server_factory, database_url)


def every_worker_refuses_a_deleted_value_within_1s(
    two_workers: RunningServer, workers: WorkerConnections
) -> None:
    admin = two_workers.admin
    token = _create(workers, admin, "doomed")
    value = str(token["value"])
    for pid in workers.pids:  # each worker authenticates it, so each has it cached
        assert call(workers.check_still_on(pid), "GET", SELF, value).status == 200

    deleter = workers.pids[0]
    path = f"/api-tokens/{token['id']}"
    assert call(workers.check_still_on(deleter), "DELETE", path, admin).status == 204
    deleted_at = time.monotonic()

    refused_after: dict[int, float] = {}
    for pid in workers.pids:
        connection = workers.check_still_on(pid)
        while True:  # each poll is a request; nothing waits for time to pass
            status = call(connection, "GET", SELF, value).status
            elapsed = time.monotonic() - deleted_at
            if status == 401:
                refused_after[pid] = elapsed
                break
            assert status == 200, status
            assert elapsed <= REVOCATION_BOUND_SECONDS, (
                f"worker {pid} still accepted the deleted value {elapsed:.3f} s after the delete"
            )
    assert sorted(refused_after) == workers.pids
    for pid, elapsed in refused_after.items():
        assert elapsed <= REVOCATION_BOUND_SECONDS, (pid, elapsed)


def clean_stop_loses_no_pending_last_used(
    two_workers: RunningServer,
    workers: WorkerConnections,
    server_factory: ServerFactory,
    database_url: str,
) -> None:
    admin = two_workers.admin
    first, second = workers.pids
    used = {
        first: _create(workers, admin, "used-on-first"),
        second: _create(workers, admin, "used-on-second"),
    }
    for pid, token in used.items():  # each worker holds one token's usage, unwritten
        connection = workers.check_still_on(pid)
        assert call(connection, "GET", SELF, str(token["value"])).status == 200
    for pid, token in used.items():  # the other worker does not know it yet: not written
        other = second if pid == first else first
        path = f"/api-tokens/{token['id']}"
        seen = call(workers.check_still_on(other), "GET", path, admin).json()
        assert seen["lastUsedAt"] is None, seen

    workers.close()
    status = two_workers.stop()
    assert status in CLEAN_EXIT_STATUSES and not two_workers.needed_sigkill, (
        status,
        two_workers.log_tail(),
    )

    reader = WorkerConnections(server_factory(database_url, bootstrap=False), 1)
    try:
        connection = reader.check_still_on(reader.pids[0])
        for token in used.values():
            seen = call(connection, "GET", f"/api-tokens/{token['id']}", admin).json()
            assert seen["lastUsedAt"] is not None, seen
            assert seen["lastUsedIPs"] == ["127.0.0.1"], seen
    finally:
        reader.close()


def metrics_are_summed_over_workers(two_workers: RunningServer, workers: WorkerConnections) -> None:
    admin = two_workers.admin
    sent = {pid: 3 + index * 4 for index, pid in enumerate(workers.pids)}  # 3 and 7
    cached = 1  # the admin's credential, in each worker's own cache
    for pid, count in sent.items():
        connection = workers.check_still_on(pid)
        for _ in range(count):
            assert call(connection, "GET", SELF, admin).status == 200
    for pid in workers.pids:  # whichever worker answers the scrape sees every worker's
        scrape = Scrape(call(workers.check_still_on(pid), "GET", "/metrics").body.decode())
        requests = scrape.value(
            "apitokens_http_requests_total", method="GET", route="/api-tokens/self", status="200"
        )
        assert requests == sum(sent.values()), scrape.text
        authentications = scrape.value("apitokens_authentications_total", outcome="ok", reason="ok")
        assert authentications == sum(sent.values())
        assert scrape.total(
            "apitokens_http_request_duration_seconds_count", route="/api-tokens/self"
        ) == (sum(sent.values()))
        assert scrape.value("apitokens_build_info", version=scrape_version(scrape)) == 1.0
        assert scrape.value("apitokens_tokens_stored") == 1.0
        assert scrape.value("apitokens_credential_cache_entries") == cached  # this worker's
        assert "process_cpu_seconds_total" not in scrape.text  # one process's: left out


def scrape_version(scrape: Scrape) -> str:
    versions = scrape.series("apitokens_build_info", "version")
    assert len(versions) == 1, versions
    return next(iter(versions))
