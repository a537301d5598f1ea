"""Helpers for the process-model tests: which worker process holds a connection.

A multi-worker server is one listening port shared by several processes, and the kernel
decides which worker accepts a connection. ``WorkerConnections`` opens keep-alive
connections until it holds one to every worker, finding each connection's worker through
``/proc``: the server-side socket of a connection is a descriptor of exactly one process.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.processes import RunningServer

FIND_WORKERS_TIMEOUT_SECONDS = 30.0


def raise_own_open_file_limit() -> int:
    """Raise this (test) process's soft open-file limit to its hard limit; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, grandchildren...)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            parent = int(stat.rpartition(")")[2].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


def _server_side_inode(server_port: int, client_port: int) -> int | None:
    """The inode of the server's end of the loopback connection from ``client_port``."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], int(fields[9])
        if int(local.split(":")[1], 16) == server_port and (
            int(remote.split(":")[1], 16) == client_port
        ):
            return inode
    return None


def worker_of(server: RunningServer, connection: http.client.HTTPConnection) -> int | None:
    """The pid of the process holding the server's end of ``connection`` (open, used)."""
    assert connection.sock is not None
    inode = _server_side_inode(server.port, connection.sock.getsockname()[1])
    if inode is None:
        return None
    for pid in [server.pid, *descendants(server.pid)]:
        if inode in _socket_inodes(pid):
            return pid
    return None


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    key: str | None = None,
    body: Any = None,
) -> Answer:
    """One request on a kept-alive connection (never reopened behind our back)."""
    headers = {"X-API-Key": key} if key else {}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    connection.request(method, path, body=payload, headers=headers)
    response = connection.getresponse()
    data = response.read()
    return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)


class WorkerConnections:
    """One open keep-alive connection to each worker process of ``server``."""

    def __init__(self, server: RunningServer, workers: int) -> None:
        self.server = server
        self.by_worker: dict[int, http.client.HTTPConnection] = {}
        spare: list[http.client.HTTPConnection] = []
        deadline = time.monotonic() + FIND_WORKERS_TIMEOUT_SECONDS
        try:
            while len(self.by_worker) < workers:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"found connections to {len(self.by_worker)} of {workers} workers "
                        f"({sorted(self.by_worker)}) after {len(spare)} more tries"
                    )
                connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
                assert call(connection, "GET", "/healthz").status == 200  # accepted and served
                pid = worker_of(server, connection)
                if pid is None or pid in self.by_worker:
                    spare.append(connection)
                else:
                    self.by_worker[pid] = connection
        finally:
            for connection in spare:
                connection.close()

    @property
    def pids(self) -> list[int]:
        return sorted(self.by_worker)

    def __iter__(self) -> Any:
        return iter(sorted(self.by_worker.items()))

    def check_still_on(self, pid: int) -> http.client.HTTPConnection:
        """The connection to ``pid``, asserted to be the same connection, still open."""
        connection = self.by_worker[pid]
        assert connection.sock is not None, "the connection was closed"
        assert worker_of(self.server, connection) == pid
        return connection

    def close(self) -> None:
        for connection in self.by_worker.values():
            connection.close()
