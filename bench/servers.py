"""The servers under load: real processes on loopback, one uvicorn worker each.

Ours is started exactly as a user starts it (``apitokens serve``, which runs uvicorn
with its defaults: httptools, asyncio's event loop, one worker, no uvicorn access log).
The bare Starlette app and the Django peer run under the ``uvicorn`` command with
uvicorn's own defaults spelled out (uvloop, httptools, one worker).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

LOOPBACK = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
UVICORN_FLAGS = [
    "--workers",
    "1",
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--no-access-log",
    "--no-server-header",
    "--timeout-graceful-shutdown",
    "10",
    "--log-level",
    "warning",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class Server:
    """One server process; ``start()`` returns once it answers HTTP."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        logs: Path,
        env: dict[str, str] | None = None,
        port: int | None = None,
        cpu: int | None = None,
    ) -> None:
        self.name = name
        self.port = port or free_port()
        self.argv = [part.replace("{port}", str(self.port)) for part in argv]
        if cpu is not None and shutil.which("taskset"):
            self.argv = ["taskset", "-c", str(cpu), *self.argv]
        if shutil.which("setpriv") and threading.current_thread() is threading.main_thread():
            self.argv = ["setpriv", "--pdeathsig", "TERM", "--", *self.argv]  # no orphans
        base = {k: v for k, v in os.environ.items() if not k.startswith("APITOKENS_")}
        self.env = {**base, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.log_path = logs / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 90.0) -> Server:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(self.url + "/", timeout=2.0)
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer in {timeout} s:\n{self.log_tail()}")

    def rss_mib(self) -> float:
        """Resident memory of the server process (one worker: the process itself)."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def ours(name: str, database_url: str, logs: Path, cpu: int | None, env: dict[str, str]) -> Server:
    executable = Path(sys.executable).parent / "apitokens"
    argv = [
        str(executable),
        "serve",
        "--host",
        LOOPBACK,
        "--port",
        "{port}",
        "--database-url",
        database_url,
    ]
    return Server(name, argv, logs, env=env, cpu=cpu)


def bare(logs: Path, cpu: int | None) -> Server:
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.bare_app:app",
        "--host",
        LOOPBACK,
        "--port",
        "{port}",
        *UVICORN_FLAGS,
    ]
    return Server("bare-starlette", argv, logs, cpu=cpu)


def peer(python: Path, database: Path, logs: Path, cpu: int | None) -> Server:
    argv = [
        str(python),
        "-m",
        "uvicorn",
        "bench.peer.asgi:application",
        "--host",
        LOOPBACK,
        "--port",
        "{port}",
        *UVICORN_FLAGS,
    ]
    env = {"BENCH_PEER_DB": str(database), "DJANGO_SETTINGS_MODULE": "bench.peer.settings"}
    return Server("peer-drf-api-key", argv, logs, env=env, cpu=cpu)
