"""The two hottest requests, answered without FastAPI's request machinery.

``GET /api-tokens/self`` and ``GET /verify`` are what every client and every proxied
request send. Through the FastAPI app each pays its middleware stack (error, telemetry,
body-limit, exception and exit-stack layers) and its router (route matching, scope
bookkeeping) before the endpoint runs: measured, more than the endpoint itself costs.
``HotPaths`` sits in front of the app and sends exactly those two requests straight to
the same endpoint functions the app's routes use, records them with the same
``AccessLog`` (its ``record``: log line and metrics, with the options the app's own was
added with) and answers errors with the app's own exception handlers, so answers, log
lines and metrics are the same as through the app (``tests/api/test_api_hot_paths.py``
compares them). Everything else, and any other method or path, goes to the app.

Only bodyless GETs take this path: nothing here reads a body, so nothing bypasses the
body limit.

**Answers that are ready at once.** Most of these requests present a value known in
memory and pass: nothing to wait for. For those, each path also has a plain function (its
``now``: ``get_self_now``, ``verify_get_now``) that returns the same answer, or None
(or raises) when it would have to wait, look something up or refuse, having recorded
nothing. ``answer_now`` runs it and records the request like ``run``; the server's
protocol (``http.connections``) calls it when it has a whole bodyless GET for one of these
paths on a kept-alive connection, and writes the answer itself, without an ASGI
request cycle (a task, the cycle's object, two ``send`` calls and their checks: measured,
most of what a served request costs beyond the application). When it gets None, the
request goes the ordinary way, through ``__call__``, which decides it from the start.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from apitokens.http.access import AccessLog

Endpoint = Callable[[Request], Awaitable[Response]]
Now = Callable[[Request], Response | None]
"""An endpoint's answer when it is ready at once; None (or the endpoint's exception) when not."""


class HotPaths:
    def __init__(
        self,
        app: FastAPI,
        routes: dict[str, tuple[Endpoint, Now]],
        after_start: Callable[[], None] | None = None,
    ) -> None:
        """``after_start``: called once the app's start-up has completed (its lifespan
        reported ``lifespan.startup.complete``), before the server takes requests."""
        self.app = app
        self._after_start = after_start
        self._access = AccessLog(app, **_access_log_options(app))  # its record() only
        self._routes: dict[str, ASGIApp] = {
            path: self._endpoint_app(endpoint) for path, (endpoint, _) in routes.items()
        }
        self._now = {path: now for path, (_, now) in routes.items()}

    def answer_now(self, scope: Scope) -> Response | None:
        """The answer to a bodyless ``GET`` of a hot path when it is ready at once, the
        request recorded (log line, metrics) as ``__call__`` records it; None otherwise,
        with nothing recorded: the request is then to go through ``__call__``. An error
        after the token's use was recorded is raised (the server answers 500, as for an
        application that fails), never handed to ``__call__`` to be recorded twice."""
        now = self._now.get(scope["path"])
        if now is None or scope["method"] != "GET" or scope.get("root_path"):
            return None
        started = time.perf_counter()
        scope["app"] = self.app
        try:
            response = now(Request(scope))
        except Exception:
            if _admitted(scope):
                raise  # the use is recorded: a failure past that point is not to be retried
            return None  # a refusal, before anything was recorded: __call__ answers it
        if response is not None:
            self._access.record(scope, response.status_code, False, time.perf_counter() - started)
        return response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            hot = self._routes.get(scope["path"])
            if hot is not None and not scope.get("root_path"):
                scope["app"] = self.app
                await hot(scope, receive, send)
                return
        elif scope["type"] == "lifespan" and self._after_start is not None:
            send = self._started(send, self._after_start)
        await self.app(scope, receive, send)

    @staticmethod
    def _started(send: Send, after_start: Callable[[], None]) -> Send:
        async def sent(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                after_start()
            await send(message)

        return sent

    def _endpoint_app(self, endpoint: Endpoint) -> ASGIApp:
        app = self.app
        record = self._access.record

        async def run(scope: Scope, receive: Receive, send: Send) -> None:
            # What AccessLog does around the app, without wrapping ``send`` to learn the
            # status: here it is the status of the one Response sent.
            started = time.perf_counter()
            status: int | None = None
            failed = True
            try:
                request = Request(scope, receive, send)
                try:
                    response = await endpoint(request)
                except Exception as error:
                    handler = _handler_for(app, error)
                    if handler is None:
                        raise
                    response = await handler(request, error)
                    if _handler_for(app, error, unexpected_only=True) is handler:
                        status = response.status_code
                        await response(scope, receive, send)
                        raise  # as Starlette's ServerErrorMiddleware: answered, re-raised
                status = response.status_code
                await response(scope, receive, send)
                failed = False
            finally:
                record(scope, status, failed, time.perf_counter() - started)

        return run


Handler = Callable[[Request, Exception], Awaitable[Response]]


def _admitted(scope: Scope) -> bool:
    """Whether a ``now`` function got as far as ``security.admit`` (which names the token
    in the scope's state for the access line)."""
    state = scope.get("state")
    return bool(state and state.get("token_id"))


def _access_log_options(app: FastAPI) -> dict[str, Any]:
    """The options the app's own ``AccessLog`` was added with (log on/off, its metrics)."""
    for middleware in app.user_middleware:
        if middleware.cls is AccessLog:  # type: ignore[comparison-overlap]
            return dict(middleware.kwargs)
    raise ValueError("the app has no AccessLog middleware to answer its hot paths like it")


def _handler_for(app: FastAPI, error: Exception, unexpected_only: bool = False) -> Handler | None:
    """The app's exception handler for ``error``, looked up as Starlette does (by MRO)."""
    handlers = app.exception_handlers
    if unexpected_only:
        found = handlers.get(Exception) or handlers.get(500)
        return found  # type: ignore[return-value]
    for cls in type(error).__mro__:
        if cls in handlers:
            return handlers[cls]  # type: ignore[return-value]
    return None
