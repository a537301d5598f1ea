"""Real ``apitokens`` processes for tests: free ports, ``serve`` and ``bootstrap``.

The executable is the one installed next to the running interpreter
(``<venv>/bin/apitokens``), so tests exercise exactly what a user runs.

A ``ServerProcess`` of that executable is forked from the test process's fork server
(``support.forkserver``: the app imported once, not once per server) unless
``APITOKENS_TEST_FORK_SERVERS=0``; any other command is started with ``exec``.

No process outlives the test session: every child is registered and killed at interpreter
exit, each ``ServerProcess`` kills its child when garbage-collected, and children started
from the main thread are also started with a parent-death signal (``setpriv --pdeathsig``;
the fork server and its servers set their own) so that they stop even if pytest itself is
killed with SIGKILL.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Protocol, Self

import httpx

from support import forkserver
from support.clients import tls

LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_SECONDS = float(os.environ.get("APITOKENS_TEST_STARTUP_TIMEOUT", "20"))
"""How long ``start()`` waits for ``/healthz``; the environment variable raises it on a slow box."""
STOP_TIMEOUT_SECONDS = 10.0
BOOTSTRAP_TIMEOUT_SECONDS = 60.0
_PORT_IN_USE_MARKERS = ("address already in use", "errno 98")
CLEAN_EXIT_STATUSES = frozenset({0, -signal.SIGTERM, 128 + signal.SIGTERM})
"""Exit statuses of a clean shutdown on SIGTERM: a one-worker server re-raises the signal it
caught (-SIGTERM, or 128 + SIGTERM through a shell); the supervisor of a multi-worker
server (``--workers N``) exits 0 once every worker has stopped."""
_START_ATTEMPTS_ON_PORT_CLASH = 3

EnvOverrides = Mapping[str, str | None]

_handed_out_ports: set[int] = set()
_port_lock = threading.Lock()


class Child(Protocol):
    """A started process: a ``subprocess.Popen``, or a server the fork server forked."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, signum: int, /) -> None: ...


_live_children: set[Child] = set()
_children_lock = threading.Lock()


class ServerStartError(RuntimeError):
    """The server exited or did not answer ``/healthz`` in time; the message has its log."""


class BootstrapError(RuntimeError):
    """``apitokens bootstrap`` failed or did not print exactly one token value."""


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on *host* that nothing is bound to at the time of the call.

    A port is never handed out twice in one process, so servers started one after the
    other in a test cannot be given the same port before the first one has bound it.
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
        with _port_lock:
            if port not in _handed_out_ports:
                _handed_out_ports.add(port)
                return port
    raise RuntimeError("could not find a free port that was not handed out already")


def apitokens_executable() -> Path:
    """Return ``<venv>/bin/apitokens`` for the interpreter running the tests."""
    path = Path(sys.executable).parent / "apitokens"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist: install the package into this virtualenv "
            "(scripts/test does it, or: .venv/bin/pip install -e '.[test]')"
        )
    return path


def child_env(overrides: EnvOverrides | None = None) -> dict[str, str]:
    """Environment for a child process: ours without ``APITOKENS_*``, plus *overrides*.

    Settings leaking from the developer's shell must not change what a test sees, so
    every ``APITOKENS_*`` variable is dropped; a test sets the ones it means. An override
    whose value is ``None`` removes that variable.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("APITOKENS_")}
    env["PYTHONUNBUFFERED"] = "1"
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_bootstrap(
    database_url: str,
    name: str = "admin",
    *,
    env: EnvOverrides | None = None,
    executable: Path | None = None,
    force: bool = False,
) -> str:
    """Run ``apitokens bootstrap --name NAME --database-url URL [--force]``; return the value.

    Raises ``BootstrapError`` if the command fails or stdout is not a single value.
    """
    command = [
        str(executable or apitokens_executable()),
        "bootstrap",
        "--name",
        name,
        "--database-url",
        database_url,
        *(["--force"] if force else []),
    ]
    try:
        done = subprocess.run(
            command,
            env=child_env(env),
            capture_output=True,
            text=True,
            timeout=BOOTSTRAP_TIMEOUT_SECONDS,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise BootstrapError(f"{command} did not finish in {exc.timeout} s") from exc
    if done.returncode != 0:
        raise BootstrapError(
            f"apitokens bootstrap exited with {done.returncode}\n"
            f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
        )
    value = done.stdout.strip()
    if not value or any(char.isspace() for char in value):
        raise BootstrapError(
            f"apitokens bootstrap must print the token value alone on stdout, got {done.stdout!r}"
        )
    return value


def _spawn(
    command: Sequence[str], env: Mapping[str, str], log: IO[bytes]
) -> subprocess.Popen[bytes]:
    """Start *command* in its own process group, output to *log*, registered for cleanup."""
    argv = list(command)
    setpriv = shutil.which("setpriv")
    if setpriv and threading.current_thread() is threading.main_thread():
        # The parent-death signal fires when the creating *thread* exits, so it is only
        # safe from the main thread, which lives as long as the test session.
        argv = [setpriv, "--pdeathsig", "TERM", "--", *argv]
    child = subprocess.Popen(
        argv,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    with _children_lock:
        _live_children.add(child)
    return child


def _register(child: Child) -> Child:
    with _children_lock:
        _live_children.add(child)
    return child


def _signal_group(child: Child, signum: int) -> None:
    """Send *signum* to the child's process group (the child and anything it started)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signum)


def _reap(child: Child, timeout: float) -> int:
    """Wait for *child* up to *timeout*, then SIGKILL its group; return its exit status."""
    try:
        status = child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal_group(child, signal.SIGKILL)
        status = child.wait(timeout=30)  # a SIGKILLed process is gone at once
    _signal_group(child, signal.SIGKILL)  # stragglers the server may have started
    with _children_lock:
        _live_children.discard(child)
    return status


def _kill_all_children() -> None:
    """atexit hook: kill every child still registered."""
    with _children_lock:
        children = list(_live_children)
    for child in children:
        if child.poll() is None:
            _signal_group(child, signal.SIGKILL)
        _reap(child, timeout=5.0)


atexit.register(_kill_all_children)


class _ChildSlot:
    """The current child of a ``ServerProcess``; kept apart so a finalizer can reach it."""

    def __init__(self) -> None:
        self.child: Child | None = None

    def kill(self) -> None:
        if self.child is not None and self.child.poll() is None:
            _signal_group(self.child, signal.SIGKILL)
            _reap(self.child, timeout=5.0)


class ServerProcess:
    """One ``apitokens serve`` process on a loopback port, with its output in a log file.

    ``start()`` returns once ``GET /healthz`` answers 200. The port stays the same across
    ``stop()``/``start()``/``restart()``, so clients and URLs handed out keep working. The
    log file accumulates the output of every run of this server.
    """

    def __init__(
        self,
        database_url: str,
        *,
        args: Sequence[str] = (),
        env: EnvOverrides | None = None,
        log_dir: Path | None = None,
        port: int | None = None,
        executable: Path | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
    ) -> None:
        self.database_url = database_url
        self.host = LOOPBACK
        self.args = list(args)
        self.env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.executable = executable or apitokens_executable()
        self._port_chosen_by_us = port is None
        self.port = free_port() if port is None else port
        self._slot = _ChildSlot()
        self._starts = 0
        self.needed_sigkill = False
        """True once a ``stop()`` had to fall back to SIGKILL (the server hung on SIGTERM)."""
        if log_dir is None:
            log_dir = Path(tempfile.mkdtemp(prefix="apitokens-server-"))
            weakref.finalize(self, shutil.rmtree, log_dir, True)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"server-{self.port}.log"
        weakref.finalize(self, self._slot.kill)

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"<{type(self).__name__} {self.url} {state} db={self.database_url!r}>"

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash: ``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        """Process id of the current (or last) server process."""
        if self._slot.child is None:
            raise RuntimeError("the server was never started")
        return self._slot.child.pid

    @property
    def returncode(self) -> int | None:
        """Exit status of the last process, ``None`` while it runs or before any start."""
        return None if self._slot.child is None else self._slot.child.poll()

    def is_running(self) -> bool:
        return self._slot.child is not None and self._slot.child.poll() is None

    def command(self) -> list[str]:
        """The ``apitokens serve`` command line this server runs."""
        return [
            str(self.executable),
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--database-url",
            self.database_url,
            *self.args,
        ]

    def log_text(self) -> str:
        """Everything every run of this server wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def start(self) -> Self:
        """Start the process and wait until ``/healthz`` answers 200.

        Raises ``ServerStartError`` (with the log's tail) if the process exits or is not
        ready within ``startup_timeout`` seconds; the process is killed in that case. On a
        first start with a port we picked, a port clash is retried on a new port.
        """
        if self.is_running():
            raise RuntimeError(f"{self!r} is already running")
        attempts = _START_ATTEMPTS_ON_PORT_CLASH if self._starts == 0 else 1
        for attempt in range(1, attempts + 1):
            try:
                self._start_once()
            except ServerStartError as exc:
                clash = any(marker in str(exc).lower() for marker in _PORT_IN_USE_MARKERS)
                if not (clash and self._port_chosen_by_us and attempt < attempts):
                    raise
                self.port = free_port()
            else:
                return self
        raise AssertionError("unreachable")

    def _start_once(self) -> None:
        self._starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"=== start #{self._starts} on port {self.port} ===\n".encode())
            log.flush()
            command = self.command()
            if forkserver.enabled() and command[0] == str(apitokens_executable()):
                self._slot.child = _register(
                    forkserver.spawn(command, child_env(self.env), self.log_path, child_env(None))
                )
            else:
                self._slot.child = _spawn(command, child_env(self.env), log)
        try:
            self._wait_until_ready()
        except BaseException:
            self._slot.kill()
            raise

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        child = self._slot.child
        assert child is not None
        with httpx.Client(timeout=2.0, verify=tls()) as client:
            while True:
                status = child.poll()
                if status is not None:
                    raise ServerStartError(
                        f"apitokens serve exited with status {status} before it was ready; "
                        f"command: {self.command()}\n--- log tail ---\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if client.get(f"{self.url}/healthz").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise ServerStartError(
                        f"apitokens serve did not answer 200 on /healthz within "
                        f"{self.startup_timeout} s; command: {self.command()}\n"
                        f"--- log tail ---\n{self.log_tail()}"
                    )
                time.sleep(0.05)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int | None:
        """Send SIGTERM and wait up to *timeout* s, then SIGKILL; return the exit status.

        Returns ``None`` if the server was never started. Stopping a stopped server just
        returns its last status. Sets ``needed_sigkill`` when SIGTERM was not enough.
        """
        child = self._slot.child
        if child is None:
            return None
        if child.poll() is not None:
            return _reap(child, timeout=0)
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.needed_sigkill = True
        return _reap(child, timeout=0)

    def kill(self) -> int | None:
        """SIGKILL the server (no clean shutdown); return its exit status."""
        child = self._slot.child
        if child is None:
            return None
        if child.poll() is None:
            _signal_group(child, signal.SIGKILL)
        return _reap(child, timeout=10.0)

    def restart(self, timeout: float = STOP_TIMEOUT_SECONDS) -> Self:
        """Stop (SIGTERM) and start again on the same port."""
        self.stop(timeout=timeout)
        return self.start()

    def __enter__(self) -> Self:
        return self if self.is_running() else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class RunningServer(ServerProcess):
    """A ``ServerProcess`` plus the admin token bootstrapped before it started."""

    def __init__(self, database_url: str, *, admin: str | None = None, **kwargs: Any) -> None:
        super().__init__(database_url, **kwargs)
        self._admin = admin

    @property
    def admin(self) -> str:
        """Value of a token holding every permission, created with ``apitokens bootstrap``."""
        if self._admin is None:
            raise RuntimeError("this server was started with bootstrap=False: it has no admin")
        return self._admin
