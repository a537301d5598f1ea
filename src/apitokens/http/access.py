"""One structured log line and the request metrics per request.

Pure ASGI (no BaseHTTPMiddleware), and one middleware for both, so the hot path pays a
single wrapper.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from apitokens import logs
from apitokens.metrics import METHODS, Metrics

CLIENT_CLOSED_REQUEST = 499
"""Recorded (nginx's convention) when the application returned without answering because
the client went away, or was cut off by the request deadline, before its request was in."""


def route_of(scope: Scope) -> str:
    """The route template (``/api-tokens/{id}``), never the raw path with an id in it."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class AccessLog:
    def __init__(self, app: ASGIApp, enabled: bool = True, metrics: Metrics | None = None) -> None:
        self.app = app
        self.enabled = enabled
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (not self.enabled and self.metrics is None):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None
        failed = True

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
            failed = False
        finally:
            self.record(scope, status, failed, time.perf_counter() - started)

    def record(self, scope: Scope, status: int | None, failed: bool, seconds: float) -> None:
        """Log and count one request: ``status`` is the one sent (None: nothing was sent,
        and ``failed`` says whether the application raised)."""
        if status is None:  # nothing sent: the application failed, or the client left
            status = 500 if failed else CLIENT_CLOSED_REQUEST
        route = route_of(scope)
        if self.metrics is not None:
            self.metrics.request(scope["method"], route, status, seconds)
        if self.enabled:
            self._log(scope, route, status, seconds)

    @staticmethod
    def _log(scope: Scope, route: str, status: int, seconds: float) -> None:
        state = scope.get("state") or {}
        method = scope["method"]
        client_ip = state.get("client_ip")  # the text of the address authentication parsed
        parsed = client_ip is not None
        if not parsed:
            client = scope.get("client")
            client_ip = client[0] if client else None
        logs.access(
            {
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
                "token_id": state.get("token_id"),  # a stored token's id
                "client_ip": client_ip,
            },
            # A method of the fixed set, a route template of ours, numbers, a stored token's
            # id and a parsed address: nothing in the line can be shaped like a token value.
            checked=parsed and method in METHODS,
        )
