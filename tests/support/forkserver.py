"""Start ``apitokens serve`` processes by forking one that has already imported the app.

The suite starts about a hundred server processes, and each spent most of its start (about
0.9 s of CPU of 1.4 s) importing FastAPI, Pydantic, SQLAlchemy and the app: on two cores,
that was a sixth of the whole suite. Here one helper process per test process (the *fork
server*, this file run as a script) imports them once and then forks a server for each
request. A forked server is a real, separate process: its own pid and session (process
group), its own environment (exactly the one asked for, as ``exec`` would give), working
directory, ``argv``, log file on stdout and stderr, signals and exit status; it runs the
executable's own entry point, ``apitokens.cli.main:main``. What it shares with its
siblings is only the imported modules (copy-on-write), and nothing of the app is built
before the fork: no settings, engine, thread or event loop exists in the fork server.

The executable itself (``<venv>/bin/apitokens``) still runs where it is the point: the
command-line tests, ``scripts/serve`` and the README's commands.
``APITOKENS_TEST_FORK_SERVERS=0`` makes every server an ``exec`` of the executable again.

Protocol, one JSON object per line: the test process writes ``{"argv", "env", "cwd",
"log"}`` to the fork server's stdin and reads ``{"pid"}`` (or ``{"error"}``); the fork
server also writes ``{"exited", "status"}`` when a server ends (it is their parent and
reaps them), which ``ForkedChild.wait`` waits for. The fork server ends with its stdin,
and gets SIGTERM if the test process dies (parent-death signal), as its servers do if it
dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

PR_SET_PDEATHSIG = 1
PRELOADED = (
    "apitokens.cli.main",
    "apitokens.serving",
    "apitokens.http.app",
    "apitokens.storage.sql",
    "apitokens.storage.migrate",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "sqlalchemy.dialects.postgresql.psycopg",
    "psycopg",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.lifespan.on",
    "uvicorn.loops.auto",
    "prometheus_client",
)


def enabled() -> bool:
    return os.environ.get("APITOKENS_TEST_FORK_SERVERS", "1") != "0"


def _parent_death_signal(signum: int) -> None:
    """Ask Linux to send ``signum`` to this process when its parent (thread) exits."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)


# ------------------------------------------------------------------ the test process's side


class ForkedChild:
    """What the harness needs of ``subprocess.Popen`` for a server the fork server forked."""

    def __init__(self, pid: int, args: Sequence[str]) -> None:
        self.pid = pid
        self.args = list(args)
        self.returncode: int | None = None
        self._exited = threading.Event()

    def _set_status(self, status: int) -> None:
        self.returncode = status
        self._exited.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)


class ForkServer:
    """The fork server of this test process: started at the first ``spawn``."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._process = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=dict(env),
            # The parent-death signal follows the thread that forks: only the main thread
            # lives as long as the test process.
            preexec_fn=(
                (lambda: _parent_death_signal(signal.SIGTERM))
                if threading.current_thread() is threading.main_thread()
                else None
            ),
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._requests: IO[bytes] = self._process.stdin
        self._answers: IO[bytes] = self._process.stdout
        self._lock = threading.Lock()
        self._replies: list[dict[str, Any]] = []
        self._replied = threading.Condition()
        self._children: dict[int, ForkedChild] = {}
        self._early_exits: dict[int, int] = {}
        threading.Thread(target=self._read, name="forkserver-reader", daemon=True).start()

    def _read(self) -> None:
        for line in self._answers:
            message = json.loads(line)
            if "exited" in message:
                with self._replied:
                    child = self._children.pop(message["exited"], None)
                    if child is None:  # exited before spawn() registered it
                        self._early_exits[message["exited"]] = message["status"]
                if child is not None:
                    child._set_status(message["status"])
                continue
            with self._replied:
                self._replies.append(message)
                self._replied.notify_all()
        with self._replied:  # the fork server is gone: so are its children
            children, self._children = list(self._children.values()), {}
            self._replied.notify_all()
        for child in children:
            child._set_status(-signal.SIGKILL)

    def spawn(self, argv: Sequence[str], env: Mapping[str, str], log: Path) -> ForkedChild:
        request = {"argv": list(argv), "env": dict(env), "cwd": os.getcwd(), "log": str(log)}
        with self._lock:
            self._requests.write(json.dumps(request).encode() + b"\n")
            self._requests.flush()
            with self._replied:
                if not self._replied.wait_for(lambda: self._replies, timeout=30):
                    raise RuntimeError("the fork server did not answer")
                reply = self._replies.pop(0)
                if "error" in reply:
                    raise RuntimeError(f"the fork server could not start {argv}: {reply['error']}")
                child = ForkedChild(reply["pid"], argv)
                status = self._early_exits.pop(child.pid, None)
                if status is None:
                    self._children[child.pid] = child
        if status is not None:
            child._set_status(status)
        return child


_server: ForkServer | None = None
_server_lock = threading.Lock()


def spawn(
    argv: Sequence[str], env: Mapping[str, str], log: Path, base_env: Mapping[str, str]
) -> ForkedChild:
    """Fork ``argv`` (an ``apitokens`` command line) with ``env``, output appended to
    ``log``, from this process's fork server (started with ``base_env`` the first time)."""
    global _server
    with _server_lock:
        if _server is None:
            _server = ForkServer(base_env)
        server = _server
    return server.spawn(argv, env, log)


# ----------------------------------------------------------------- the fork server's side


def _run_child(request: dict[str, Any], keep_closed: Sequence[int]) -> None:
    """In the forked child: become the asked-for process, run the entry point, exit."""
    os.setsid()
    _parent_death_signal(signal.SIGTERM)
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for fd in keep_closed:
        with contextlib.suppress(OSError):
            os.close(fd)
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's own stdin
    sys.stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = list(request["argv"])
    from apitokens.cli.main import main

    main()


def _serve() -> None:
    _parent_death_signal(signal.SIGTERM)
    for name in PRELOADED:
        __import__(name)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    requests = sys.stdin.buffer
    answers = sys.stdout.buffer

    def answer(message: dict[str, Any]) -> None:
        answers.write(json.dumps(message).encode() + b"\n")
        answers.flush()

    def reap() -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            answer({"exited": pid, "status": os.waitstatus_to_exitcode(status)})

    while True:
        readable, _, _ = select.select([requests, wake_read], [], [])
        if wake_read in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_read, 4096)
        reap()
        if requests in readable:
            line = requests.readline()
            if not line:
                return  # the test process closed our stdin: done
            request = json.loads(line)
            try:
                pid = os.fork()
            except OSError as exc:
                answer({"error": str(exc)})
                continue
            if pid == 0:
                try:
                    _run_child(request, (wake_read, wake_write))
                except SystemExit:
                    raise
                except BaseException:  # as an exec'd interpreter would: report, exit 1
                    import traceback

                    traceback.print_exc()
                    raise SystemExit(1) from None
                raise SystemExit(0)
            answer({"pid": pid})


if __name__ == "__main__":
    _serve()
