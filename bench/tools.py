"""Installing what the benchmark needs when it is missing, and naming what was used."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bench.servers import ROOT

PEER_VENV = ROOT / "bench" / ".peer-venv"
PEER_PACKAGES = ["django", "djangorestframework", "djangorestframework-api-key"]
PEER_IMPORTS = "import django, rest_framework, rest_framework_api_key, uvicorn, uvloop, httptools"
OURS = [
    "apitokens",
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "sqlalchemy",
    "psycopg",
    "orjson",
    "pydantic",
]
PEER = [
    "django",
    "djangorestframework",
    "djangorestframework-api-key",
    "uvicorn",
    "uvloop",
    "httptools",
]


_STARTED = time.monotonic()


def say(message: str) -> None:
    """A progress line on stderr, with the seconds since the run started."""
    print(f"[bench {time.monotonic() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def ensure_wrk() -> None:
    """Install Debian's wrk if it is not on PATH."""
    if shutil.which("wrk"):
        return
    say("installing wrk (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)


def ensure_peer() -> Path:
    """The peer's virtualenv (Django, DRF, drf-api-key and our uvicorn version); its python."""
    python = PEER_VENV / "bin" / "python"
    if python.exists() and _imports(python):
        return python
    say(f"creating {PEER_VENV.relative_to(ROOT)} for the Django peer (pip)")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEER_VENV)], check=True)
    uvicorn = f"uvicorn[standard]=={importlib.metadata.version('uvicorn')}"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            *PEER_PACKAGES,
            uvicorn,
        ],
        check=True,
    )
    if not _imports(python):
        raise RuntimeError("the peer's virtualenv lacks a package after pip install")
    return python


def _imports(python: Path) -> bool:
    done = subprocess.run([str(python), "-c", PEER_IMPORTS], capture_output=True, check=False)
    return done.returncode == 0


def versions(peer_python: Path | None, postgres: str | None) -> dict[str, str]:
    found = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for name in OURS:
        found[name] = _version(name)
    if postgres:
        found["postgresql"] = postgres
    if peer_python is not None:
        script = (
            "import importlib.metadata as m, json; "
            f"print(json.dumps({{n: m.version(n) for n in {PEER!r}}}))"
        )
        done = subprocess.run(
            [str(peer_python), "-c", script], capture_output=True, text=True, check=True
        )
        import json

        for name, version in json.loads(done.stdout).items():
            found[f"peer {name}"] = version
    return found


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "kernel": platform.release(),
        "memory": _memory(),
        "load average at start (1, 5, 15 min)": load_average(),
    }


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"
