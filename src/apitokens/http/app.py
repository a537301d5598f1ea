"""The application factory: Settings in, ASGI app out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from apitokens import __version__
from apitokens.domain.clock import Clock
from apitokens.http import (
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
from apitokens.http.state import Runtime, build_runtime
from apitokens.settings import Settings
from apitokens.storage.migrate import upgrade
from apitokens.storage.sql.notify import CONNECT_TIMEOUT_SECONDS, ChangeListener

log = logging.getLogger("apitokens")

DESCRIPTION = """\
A self-hosted implementation of the Panther API Tokens REST API.

Every request authenticates with the header `X-API-Key`. GET operations need the
`OrganizationAPITokenRead` permission, POST and DELETE need `OrganizationAPITokenModify`;
`self` may always read, rotate and delete itself. Every error body is `{"message": ...}`.
"""


def create_app(settings: Settings, clock: Clock | None = None) -> FastAPI:
    runtime = build_runtime(settings, clock)
    app = FastAPI(
        title="apitokens",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan(runtime),
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.runtime = runtime
    errors.install(app)
    app.include_router(routes_tokens.router)
    app.include_router(routes_audit.router)
    app.include_router(routes_verify.router)
    app.include_router(routes_leaks.router)
    app.include_router(routes_webhooks.router)
    app.include_router(routes_ops.router)
    _mount_console(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    metrics = runtime.metrics if settings.metrics else None
    app.add_middleware(AccessLog, enabled=settings.access_log, metrics=metrics)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    return app


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
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
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
            openapi.refine(schema, app.state.runtime.catalog)
            app.openapi_schema = schema
        return app.openapi_schema

    return build


Lifespan = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]


def _lifespan(runtime: Runtime) -> Lifespan:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(upgrade, runtime.store.engine)
        await run_in_threadpool(_poll_epoch, runtime)
        listener = await run_in_threadpool(_listen_for_changes, runtime)
        jobs = runtime.lifecycle.jobs()  # the webhook sender and the expiry scanner
        tasks = [
            asyncio.create_task(_every(runtime.settings.cache_poll_seconds, _poll_epoch, runtime)),
            asyncio.create_task(
                _every(runtime.settings.last_used_flush_seconds, _flush_usage, runtime)
            ),
        ]
        tasks += [asyncio.create_task(_every_job(every, job)) for _, every, job in jobs]
        log.info("ready", extra={"database": runtime.store.dialect})
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if listener is not None:
                await run_in_threadpool(listener.stop)
            await run_in_threadpool(_flush_usage, runtime)
            runtime.lifecycle.close()
            runtime.store.close()
            log.info("stopped")

    return lifespan


async def _every(seconds: float, job: Callable[[Runtime], None], runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(seconds)
        await run_in_threadpool(job, runtime)


async def _every_job(seconds: float, job: Callable[[], None]) -> None:
    while True:
        await asyncio.sleep(seconds)
        await run_in_threadpool(job)


def _poll_epoch(runtime: Runtime) -> None:
    """Drop cached credentials when another instance changed a token.

    If the database cannot be read, cached credentials are dropped too: a revocation
    made elsewhere could not be seen, so requests must go to the database (and get 503).
    """
    try:
        with runtime.store.unit() as unit:
            epoch = unit.tokens.epoch()
    except Exception:
        runtime.cache.clear("unreachable")
        runtime.cache.epoch = None
        return
    runtime.cache.observe_epoch(epoch)


def _listen_for_changes(runtime: Runtime) -> ChangeListener | None:
    """On PostgreSQL, drop cached credentials as soon as another instance commits a change.

    The epoch poll stays as the backstop: it bounds staleness by ``cache_poll_seconds``
    whenever notifications cannot be heard (listener reconnecting, a pooler without LISTEN).
    """
    if runtime.store.dialect != "postgresql":
        return None

    def lost() -> None:
        runtime.cache.clear("unreachable")
        runtime.cache.epoch = None  # nothing cached is trusted until the poll reads the epoch

    listener = ChangeListener(runtime.store.url, lambda: runtime.cache.clear("epoch"), lost)
    listener.start()
    if not listener.wait_listening(CONNECT_TIMEOUT_SECONDS):
        log.warning("not listening for token changes yet; polling the cache epoch meanwhile")
    return listener


def _flush_usage(runtime: Runtime) -> None:
    try:
        written = runtime.usage.flush()
    except Exception as error:
        runtime.metrics.usage_flush_failed()
        log.warning("lastUsedAt flush failed; will retry", extra={"error": type(error).__name__})
        return
    if written:
        runtime.metrics.usage_flushed()
