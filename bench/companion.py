"""Another client loading the server while wrk measures: a helper process, bounded in time.

A companion is ``python -m bench.<module> ...``: it prepares (connects), prints
``started`` on a line of its own, runs for the seconds it was given, then prints one JSON
object (what it did) as its last line and exits. ``Companion`` is a context: entering
starts the process and waits for ``started``; leaving waits for the process to end and
keeps its JSON in ``reports``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import TracebackType
from typing import Any

from bench.servers import ROOT

START_TIMEOUT = 60.0


class Companion:
    def __init__(
        self,
        module: str,
        args: list[str],
        reports: list[dict[str, Any]],
        env: dict[str, str] | None = None,
    ) -> None:
        self.argv = [sys.executable, "-m", module, *args]
        self.env = {**os.environ, **(env or {})}
        self.reports = reports
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Companion:
        self.process = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # blocks until it is ready (or has died)
        if line.strip() != "started":
            self._end()
            raise RuntimeError(f"{self.argv[2]} did not start: {line}{self._stderr()}")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        process = self.process
        assert process is not None
        if kind is not None:
            self._end()
            return
        try:
            out, err = process.communicate(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._end()
            raise RuntimeError(f"{self.argv[2]} did not finish") from None
        if process.returncode != 0 or not out.strip():
            raise RuntimeError(f"{self.argv[2]} failed ({process.returncode}): {err[-3000:]}")
        self.reports.append(json.loads(out.strip().splitlines()[-1]))

    def _end(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        self.process = process

    def _stderr(self) -> str:
        if self.process is None or self.process.stderr is None:
            return ""
        return self.process.stderr.read()[-3000:]
