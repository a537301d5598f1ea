"""A real nginx (Debian's package) and a tiny upstream, for the reverse-proxy tests.

nginx runs in the foreground from a private directory (its own pid file, logs and temp
paths), on a free loopback port, with the site configuration rendered from
``docs/nginx.conf.template``: the same file the documentation shows.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

from support.processes import LOOPBACK, free_port

TEMPLATE = Path(__file__).resolve().parents[2] / "docs" / "nginx.conf.template"
PLACEHOLDERS = ("LISTEN", "APITOKENS_ADDRESS", "UPSTREAM_ADDRESS")
START_TIMEOUT_SECONDS = 10.0

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

# The main configuration around the documented site: only what a private, unprivileged
# instance needs. The site itself is included exactly as rendered from the template.
MAIN_CONFIG = """\
{user}daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    include {root}/site.conf;
}}
"""


def nginx_executable() -> str | None:
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx",) if os.access(path, os.X_OK)), None
    )


def render_site(values: Mapping[str, str], template: Path = TEMPLATE) -> str:
    """The template with every ``${NAME}`` placeholder filled, as ``envsubst`` would.

    Raises KeyError for a placeholder without a value, so the docs cannot grow one that
    the tests do not know about.
    """
    text = template.read_text(encoding="utf-8")
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


class EchoUpstream:
    """An HTTP service that answers every request with what it received, as JSON:
    ``{"method", "path", "headers": {lower-case name: [values]}}``."""

    def __init__(self) -> None:
        self.server = _EchoServer((LOOPBACK, 0), _EchoHandler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def seen(self) -> list[str]:
        """``METHOD path`` of every request that reached the upstream, in order."""
        return list(self.server.seen)

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host!s}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


class _EchoServer(ThreadingHTTPServer):
    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.seen: list[str] = []


class _EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _EchoServer

    def _echo(self) -> None:
        self.server.seen.append(f"{self.command} {self.path}")
        length = int(self.headers.get("Content-Length") or 0)
        received = self.rfile.read(length).decode(errors="replace") if length else ""
        headers: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), []).append(value)
        echo = {"method": self.command, "path": self.path, "headers": headers, "body": received}
        body = json.dumps(echo)
        payload = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _echo

    def log_message(self, format: str, *args: object) -> None:
        return None


class Nginx:
    """nginx serving the documented site on a free loopback port until ``stop()``."""

    def __init__(self, root: Path, apitokens_address: str, upstream_address: str) -> None:
        executable = nginx_executable()
        if executable is None:
            raise FileNotFoundError("nginx is not installed (Debian package nginx)")
        self.executable = executable
        self.root = root
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        root.mkdir(parents=True, exist_ok=True)
        values = {
            "LISTEN": f"{LOOPBACK}:{self.port}",
            "APITOKENS_ADDRESS": apitokens_address,
            "UPSTREAM_ADDRESS": upstream_address,
        }
        (root / "site.conf").write_text(render_site(values), encoding="utf-8")
        user = "user root;\n" if os.geteuid() == 0 else ""
        (root / "nginx.conf").write_text(MAIN_CONFIG.format(user=user, root=root))
        self._process: subprocess.Popen[bytes] | None = None

    def command(self, *extra: str) -> list[str]:
        config = str(self.root / "nginx.conf")
        return [
            self.executable,
            "-p",
            str(self.root),
            "-e",
            str(self.root / "error.log"),
            "-c",
            config,
            *extra,
        ]

    def check_config(self) -> None:
        done = subprocess.run(self.command("-t"), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"nginx -t refused the configuration:\n{done.stderr}")

    def start(self) -> Self:
        self.check_config()
        log = (self.root / "stderr.log").open("ab")
        self._process = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self._wait_until_listening()
        return self

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"nginx exited at start:\n{self.error_log()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((LOOPBACK, self.port), timeout=0.5),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(f"nginx did not listen within {START_TIMEOUT_SECONDS} s")

    def error_log(self) -> str:
        path = self.root / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGQUIT)  # graceful
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def running_nginx(root: Path, apitokens_address: str, upstream_address: str) -> Iterator[Nginx]:
    nginx = Nginx(root, apitokens_address, upstream_address).start()
    try:
        yield nginx
    finally:
        nginx.stop()
