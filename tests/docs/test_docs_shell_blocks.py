"""Every shell block of README.md and docs/*.md runs as written, in order, as a newcomer would.

The blocks are taken from the Markdown (fences ``sh``, ``bash``, ``shell``, ``console``) and
run one after another by bash (``set -euo pipefail``) in the repository, in a clean
environment: a fresh empty ``HOME`` (so the default database and the profile file are new),
``PATH`` without ``.venv/bin`` (a block must say how to get the command), no ``APITOKENS_*``.
What one block exports, and its ``PATH``, carries over to the next, like a terminal.

A comment on the line right before a fence says how the block is treated:

- ``<!-- docs-test: server (...) -->``: the block starts the server; it is run in the
  background, as a reader runs it in a second terminal, until the end of the test.
- ``<!-- docs-test: stdin=admin-token (...) -->``: the reader types the admin token the
  server block printed; the test gives it on stdin.
- ``<!-- docs-test: illustrative (why) -->``: shown, not run (another host, a system file,
  the whole suite). The reason is required.

The one change made to the blocks: ``127.0.0.1:8000`` becomes the free port the test's server
listens on (given to ``scripts/serve`` as ``APITOKENS_PORT``). Output is redacted of token
values before it appears in a failure.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from apitokens.domain.values import redact
from support import free_port
from support.processes import _reap, _signal_group, _spawn

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(sh|bash|shell|console)\s*$")
MARKER = re.compile(r"^<!-- docs-test: (illustrative|server|stdin=admin-token) \((.+)\) -->$")
ADMIN_LINE = re.compile(r"^\s+(apitk_[0-9A-Za-z]{49})\s*$", re.MULTILINE)
BLOCK_TIMEOUT_SECONDS = 120.0
SERVER_START_SECONDS = 90.0


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    text: str
    kind: str  # "run", "illustrative", "server", "stdin=admin-token"
    reason: str

    def __str__(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def shell_blocks(document: Path) -> list[Block]:
    lines = document.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        if FENCE.match(lines[index]):
            end = lines.index("```", index + 1)
            marker = MARKER.match(lines[index - 1]) if index else None
            kind, reason = (marker.group(1), marker.group(2)) if marker else ("run", "")
            text = "\n".join(lines[index + 1 : end]) + "\n"
            blocks.append(Block(document, index + 1, text, kind, reason))
            index = end
        index += 1
    return blocks


ALL_BLOCKS = [block for document in DOCUMENTS for block in shell_blocks(document)]


def test_markers_are_well_formed() -> None:
    """A marker that does not parse would silently run (or skip) a block: none may exist."""
    for document in DOCUMENTS:
        for number, text in enumerate(document.read_text(encoding="utf-8").splitlines(), 1):
            if "docs-test" in text:
                assert MARKER.match(text), f"{document.relative_to(ROOT)}:{number}: {text}"
    kinds = [block.kind for block in ALL_BLOCKS]
    assert kinds.count("server") == 1
    assert kinds.index("server") < kinds.index("stdin=admin-token")
    assert kinds.count("run") >= 4


def clean_environment(home: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def wait_for_server(url: str, log: Path, child: subprocess.Popen[bytes]) -> str:
    """The admin token the server block printed, once the server answers."""
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if child.poll() is not None:
            break
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                found = ADMIN_LINE.search(log.read_text(errors="replace"))
                assert found, "scripts/serve did not print the first admin token"
                return found.group(1)
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # polling for readiness, not waiting for time to pass
    raise AssertionError(f"the server block did not start:\n{redact(log.read_text())}")


@pytest.mark.slow
def test_every_shell_block_runs_in_order(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = clean_environment(home)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    state = tmp_path / "state.sh"
    state.write_text("")
    server_log = tmp_path / "server.log"
    child: subprocess.Popen[bytes] | None = None
    admin: str | None = None
    ran: list[str] = []
    try:
        for block in ALL_BLOCKS:
            text = block.text.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
            if block.kind == "illustrative":
                continue
            if block.kind == "server":
                with server_log.open("wb") as log:
                    child = _spawn(
                        ["bash", "-c", f"cd {ROOT} && set -euo pipefail\n{text}"],
                        {**env, "APITOKENS_PORT": str(port)},
                        log,
                    )
                admin = wait_for_server(url, server_log, child)
                ran.append(str(block))
                continue
            stdin = ""
            if block.kind == "stdin=admin-token":
                assert admin is not None, f"{block}: needs the server block before it"
                stdin = admin + "\n"
            script = (
                f"set -euo pipefail\ncd {ROOT}\nsource {state}\n{text}\nexport -p > {state}.new\n"
            )
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-c", script],
                env=env,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=BLOCK_TIMEOUT_SECONDS,
                check=False,
                cwd=ROOT,
            )
            output = redact(f"--- stdout\n{done.stdout}--- stderr\n{done.stderr}")
            assert done.returncode == 0, f"{block} exited {done.returncode}:\n{text}\n{output}"
            assert "Traceback" not in done.stderr, f"{block}:\n{output}"
            os.replace(f"{state}.new", state)
            ran.append(str(block))
    finally:
        if child is not None:
            _signal_group(child, 15)
            _reap(child, timeout=10)
    assert [str(b) for b in ALL_BLOCKS if b.kind != "illustrative"] == ran
    # What the README promised: a profile only its owner can read, the default database.
    config = home / ".config" / "apitokens" / "config.toml"
    assert config.stat().st_mode & 0o777 == 0o600
    assert (home / ".local" / "share" / "apitokens" / "apitokens.db").is_file()
    assert "database: sqlite:///" + str(home) in server_log.read_text()
