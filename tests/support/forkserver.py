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

Protocol, one JSON object per line: the test process writes ``{"id", "argv", "env",
"cwd", "log", "nofile"}`` (``nofile``: its open-file limits, which a new process would
inherit) to the fork server's stdin and reads ``{"id", "pid"}`` (or ``{"id", "error"}``);
the fork server also writes ``{"exited", "status"}`` when a server ends (it is their
parent and reaps them), which ``ForkedChild.wait`` waits for. The fork server ends with
its stdin; it runs in its own session (Ctrl-C is pytest's) and gets SIGTERM if the test
process dies (parent-death signal), as its servers do if it dies. A fork server that dies
or loses track of a request is replaced at the next start.

What differs from an ``exec``: the hash seed is the fork server's (the same for all its
servers), and ``/proc/<pid>/cmdline`` shows the fork server's command line.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import select
import signal
import subprocess
import sys
import threading
import time
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
    """The fork server of this test process: started at the first ``spawn``, and again if
    it died."""

    def __init__(self, env: Mapping[str, str]) -> None:
        # The parent-death signal follows the thread that forks: only the main thread lives
        # as long as the test process.
        on_main_thread = threading.current_thread() is threading.main_thread()
        self._process = subprocess.Popen(
            [sys.executable, __file__, *(["--parent-death-signal"] if on_main_thread else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=dict(env),
            start_new_session=True,  # Ctrl-C in the terminal is pytest's to handle
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._requests: IO[bytes] = self._process.stdin
        self._answers: IO[bytes] = self._process.stdout
        self._lock = threading.Lock()
        self._replied = threading.Condition()
        self._replies: dict[int, dict[str, Any]] = {}
        self._children: dict[int, ForkedChild] = {}
        self._early_exits: dict[int, int] = {}
        self._next_id = 0
        self.alive = True
        threading.Thread(target=self._read, name="forkserver-reader", daemon=True).start()

    def _read(self) -> None:
        try:
            for line in self._answers:
                message = json.loads(line)
                with self._replied:
                    if "exited" in message:
                        child = self._children.pop(message["exited"], None)
                        if child is None:  # exited before spawn() registered it
                            self._early_exits[message["exited"]] = message["status"]
                        else:
                            child._set_status(message["status"])
                    else:
                        self._replies[message["id"]] = message
                        self._replied.notify_all()
        finally:  # the fork server is gone (or spoke nonsense): so is its supervision
            with self._replied:
                self.alive = False
                children, self._children = list(self._children.values()), {}
                self._replied.notify_all()
            for child in children:
                _orphaned(child)

    def spawn(self, argv: Sequence[str], env: Mapping[str, str], log: Path) -> ForkedChild:
        with self._lock:
            self._next_id += 1
            number = self._next_id
            request = {
                "id": number,
                "argv": list(argv),
                "env": dict(env),
                "cwd": os.getcwd(),
                "log": str(log),
                "nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
            }
            self._requests.write(json.dumps(request).encode() + b"\n")
            self._requests.flush()
            with self._replied:
                answered = self._replied.wait_for(
                    lambda: number in self._replies or not self.alive, timeout=30
                )
                reply = self._replies.pop(number, None)
                if not answered or reply is None:
                    self.close()  # never reuse one that lost track of a request
                    raise RuntimeError(f"the fork server did not start {argv}")
                if "error" in reply:
                    raise RuntimeError(f"the fork server could not start {argv}: {reply['error']}")
                child = ForkedChild(reply["pid"], argv)
                status = self._early_exits.pop(child.pid, None)
                if status is None:
                    self._children[child.pid] = child
                else:
                    child._set_status(status)
        return child

    def close(self) -> None:
        """Stop this fork server (its servers get SIGTERM from their parent-death signal)."""
        self.alive = False
        with contextlib.suppress(OSError):
            self._requests.close()
        with contextlib.suppress(ProcessLookupError):
            self._process.kill()


def _orphaned(child: ForkedChild) -> None:
    """A server whose fork server died (it got SIGTERM from its parent-death signal): its
    status is unknowable; once the process is gone, report it as killed."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and Path(f"/proc/{child.pid}").exists():
            time.sleep(0.05)
        child._set_status(-signal.SIGKILL)

    threading.Thread(target=watch, name=f"orphan-{child.pid}", daemon=True).start()


_server: ForkServer | None = None
_server_lock = threading.Lock()


def spawn(
    argv: Sequence[str], env: Mapping[str, str], log: Path, base_env: Mapping[str, str]
) -> ForkedChild:
    """Fork ``argv`` (an ``apitokens`` command line) with ``env``, output appended to
    ``log``, from this process's fork server (started with ``base_env`` when there is
    none alive)."""
    global _server
    with _server_lock:
        if _server is None or not _server.alive:
            _server = ForkServer(base_env)
        server = _server
    return server.spawn(argv, env, log)


# ----------------------------------------------------------------- the fork server's side


def _run_child(request: dict[str, Any], parent: int, keep_closed: Sequence[int]) -> None:
    """In the forked child: become the asked-for process, run the entry point, exit."""
    os.setsid()
    _parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent:  # the fork server died before the signal was armed
        os._exit(128 + signal.SIGTERM)
    signal.set_wakeup_fd(-1)
    # As a new interpreter starts: SIGPIPE ignored (a write to a closed connection raises
    # BrokenPipeError), SIGINT raises KeyboardInterrupt, the rest at their defaults.
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGCHLD, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    for fd in keep_closed:
        with contextlib.suppress(OSError):
            os.close(fd)
    resource.setrlimit(resource.RLIMIT_NOFILE, tuple(request["nofile"]))
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
    sys.path[0] = os.path.dirname(sys.argv[0])  # as for the executable's own script
    from apitokens.cli.main import main

    main()


def _serve(parent_death_signal: bool) -> None:
    if parent_death_signal:
        _parent_death_signal(signal.SIGTERM)
    for name in PRELOADED:
        __import__(name)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    me = os.getpid()
    pending = b""

    def answer(message: dict[str, Any]) -> None:
        os.write(1, json.dumps(message).encode() + b"\n")  # a line at a time, unbuffered

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
        readable, _, _ = select.select([0, wake_read], [], [])
        if wake_read in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_read, 4096)
        reap()
        if 0 not in readable:
            continue
        chunk = os.read(0, 1 << 16)
        if not chunk:
            return  # the test process closed our stdin: done
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = json.loads(line)
            try:
                pid = os.fork()
            except OSError as exc:
                answer({"id": request["id"], "error": str(exc)})
                continue
            if pid == 0:
                try:
                    _run_child(request, me, (wake_read, wake_write))
                except SystemExit:
                    raise
                except BaseException:  # as an exec'd interpreter would: report, exit 1
                    import traceback

                    traceback.print_exc()
                    raise SystemExit(1) from None
                raise SystemExit(0)
            answer({"id": request["id"], "pid": pid})


if __name__ == "__main__":
    _serve("--parent-death-signal" in sys.argv[1:])
