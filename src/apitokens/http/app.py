"""The application factory: Settings in, ASGI app out."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from apitokens import __version__
from apitokens.domain.clock import Clock
from apitokens.http import (
    docs,
    errors,
    openapi,
    routes_audit,
    routes_leaks,
    routes_ops,
    routes_tokens,
    routes_verify,
    routes_webhooks,
)
from apitokens.http.access import AccessLog
from apitokens.http.limits import BodyLimit
from apitokens.settings import Settings
from apitokens.storage.port import Store
from apitokens.wiring import Services, build

log = logging.getLogger("apitokens")

DESCRIPTION = """\
A self-hosted implementation of the Panther API Tokens REST API.

Every request authenticates with the header `X-API-Key`. GET operations need the
`OrganizationAPITokenRead` permission, POST and DELETE need `OrganizationAPITokenModify`;
`self` may always read, rotate and delete itself. Every error body is `{"message": ...}`.
"""


def create_app(
    settings: Settings, *, store: Store | None = None, clock: Clock | None = None
) -> FastAPI:
    """The ASGI app of one instance; its services are built by ``wiring.build``."""
    services = build(settings, store=store, clock=clock)
    app = FastAPI(
        title="apitokens",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan(services),
        openapi_url="/openapi.json",
        docs_url=None,  # served by http/docs.py, from the package: no CDN
        redoc_url=None,
        # No redirect is ever built from the Host header: /api-tokens/ is a 404, not a 307
        # to http://<Host>/api-tokens that a client follows with its X-API-Key.
        redirect_slashes=False,
    )
    app.state.services = services
    errors.install(app)
    for router in (
        routes_tokens.router,
        routes_audit.router,
        routes_verify.router,
        routes_leaks.router,
        routes_webhooks.router,
        routes_ops.router,
        docs.router,
    ):
        _add_routes(app, router)
    _mount_console(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    metrics = services.metrics if settings.metrics else None
    app.add_middleware(AccessLog, enabled=settings.access_log, metrics=metrics)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    return app


def _add_routes(app: FastAPI, router: APIRouter) -> None:
    """The router's own route objects, added to the app as they are.

    ``app.include_router`` would have FastAPI build every route's request handling
    (parameter models, response fields) again for each app, lazily, at the first request
    that reaches the router: 20-40 ms per router, paid by every app in a process (the test
    suite makes hundreds). The routes are built once, when their module is imported, and
    hold nothing of an app: no router here is included with a prefix, tags, dependencies
    or responses of its own, and nothing uses ``app.dependency_overrides``.
    """
    app.router.routes.extend(router.routes)  # before the app ever serves: nothing to redo


def _mount_console(app: FastAPI) -> None:
    try:
        from apitokens.console import STATIC_DIR
    except ImportError:  # the console is optional
        return
    if STATIC_DIR.is_dir():
        static = StaticFiles(directory=STATIC_DIR, html=True)
        app.mount("/console", _with_headers(static, CONSOLE_HEADERS), name="console")


CONSOLE_HEADERS = [
    # The console keeps a token in sessionStorage: no script but its own may ever run.
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        b"img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def _with_headers(inner: ASGIApp, headers: list[tuple[bytes, bytes]]) -> ASGIApp:
    """Wrap an ASGI app so that every response it starts carries ``headers``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await inner(scope, receive, send_with_headers)

    return app


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    built: dict[str, Any] = {}

    def build() -> dict[str, Any]:
        services: Services = app.state.services
        today = services.clock.now().date()
        if app.openapi_schema is None or built.get("day") != today:  # expiresAt's window
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schema.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
            schema.get("components", {}).get("schemas", {}).pop("ValidationError", None)
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            maximum = services.settings.max_lifetime_seconds
            openapi.refine(
                schema,
                services.catalog,
                today,
                timedelta(seconds=maximum) if maximum else None,
            )
            app.openapi_schema = schema
            built["day"] = today
        return app.openapi_schema

    return build


Lifespan = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]


async def _offload(work: Callable[[], object]) -> object:
    return await run_in_threadpool(work)


def _lifespan(services: Services) -> Lifespan:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await services.background.start(_offload)
        try:
            yield
        finally:
            await services.background.stop(_offload)

    return lifespan
