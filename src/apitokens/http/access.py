"""One structured log line per request (pure ASGI, so the hot path stays cheap)."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("apitokens.access")


def route_of(scope: Scope) -> str:
    """The route template (``/api-tokens/{id}``), never the raw path with an id in it."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class AccessLog:
    def __init__(self, app: ASGIApp, enabled: bool = True) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.enabled:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            state = scope.get("state") or {}
            client = scope.get("client")
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": route_of(scope),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    "token_id": state.get("token_id"),
                    "client_ip": state.get("client_ip") or (client[0] if client else None),
                },
            )
