"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for load.

httpx's async pool tops out near 600 requests/s on this machine (and drops as concurrency
rises), far below what the server answers; this client sends ~3000/s from one core, so a
load test measures the server, not the client. It speaks exactly what ``apitokens serve``
answers: a status line, headers, and a body of ``Content-Length`` bytes (none for 204).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One keep-alive connection, reopened when the server closes it. Not thread-safe."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(
        self,
        method: str,
        path: str,
        headers: Sequence[tuple[str, str]] = (),
        json_body: Any = None,
    ) -> Answer:
        """Send one request and read its answer. Transport failures raise ``OSError`` or
        ``asyncio.IncompleteReadError``; the connection is then reopened next time."""
        body = b"" if json_body is None else json.dumps(json_body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}"]
        lines.extend(f"{name}: {value}" for name, value in headers)
        if json_body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        try:
            reader, writer = await self._open()
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            answer_headers = {}
            for line in header_lines:
                if line:
                    name, value = line.split(":", 1)
                    answer_headers[name.strip().lower()] = value.strip()
            length = int(answer_headers.get("content-length", "0"))
            content = await reader.readexactly(length) if length else b""
        except BaseException:
            self.close()
            raise
        if answer_headers.get("connection", "").lower() == "close":
            self.close()
        return Answer(int(status_line.split(" ")[1]), answer_headers, content)

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
