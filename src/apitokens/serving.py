"""``apitokens serve``: the process model.

One port, ``Settings.workers`` processes. With one worker the server runs in this process;
with several, this process binds the port, starts the workers (``spawn``: fresh
interpreters) and supervises them: a worker that dies is replaced, and SIGTERM or SIGINT
stops every worker gracefully, each running the application's shutdown (which writes its
pending ``lastUsedAt``) before this process exits.

Each worker builds its own application from the same ``Settings`` (carried to it inside
the pickled uvicorn ``Config``), so each has its own credential cache kept fresh by the
change feed, its own background loops and its own connection pool. With several
workers, Prometheus metrics are kept in prometheus_client's multiprocess mode, in a
private directory made here (0700) and removed when the server stops, so ``/metrics``
sums the request counts of every worker whichever worker answers the scrape.

The server is uvicorn with httptools, chosen by measurement (BENCHMARKS.md, "The server"):
with this application Granian served no more requests per second than uvicorn and spent
more CPU per request, and it always sends ``Server: granian``, has no keep-alive timeout
apart from its header timeout, answers a head over its buffer with an empty 431 and
queues connections beyond its backpressure instead of answering 503. uvicorn gets the
missing parts from ``http.connections.GuardedHttpToolsProtocol``.
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import resource
import shutil
import sys
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess

from apitokens import logs
from apitokens.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from apitokens.http.hotpaths import HotPaths

log = logging.getLogger("apitokens")

GRACEFUL_SHUTDOWN_SECONDS = 10
"""After SIGTERM, how long requests in progress may take before their connections close."""

FD_RESERVE = 512
"""File descriptors kept for everything but client connections (pool, listener, logs,
the connections answered 503 beyond the bound)."""

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class ServingConfig(uvicorn.Config):
    """uvicorn's Config plus what each worker needs to build the application."""

    def __init__(self, settings: Settings, max_connections: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.head_timeout = settings.head_timeout_seconds
        self.max_connections = max_connections

    def load_app(self) -> Any:
        # Called in each worker: returns the factory uvicorn calls (``factory=True``).
        return functools.partial(build_app, self.settings)


def build_app(settings: Settings) -> ASGIApp:
    """The application of one worker process (its logging configured first): the app,
    with its two hottest requests answered ahead of FastAPI's machinery (``HotPaths``)."""
    from apitokens.http.app import create_app

    logs.configure(settings.log_level, settings.log_format)
    return with_hot_paths(create_app(settings), after_start=freeze_collector)


def with_hot_paths(app: FastAPI, after_start: Callable[[], None] | None = None) -> HotPaths:
    """``app`` behind ``HotPaths`` for ``GET /api-tokens/self`` and ``GET /verify``."""
    from apitokens.http.hotpaths import HotPaths
    from apitokens.http.routes_tokens import get_self, get_self_now
    from apitokens.http.routes_verify import verify_get, verify_get_now

    return HotPaths(
        app,
        {"/api-tokens/self": (get_self, get_self_now), "/verify": (verify_get, verify_get_now)},
        after_start,
    )


def freeze_collector() -> None:
    """Once the server has started: collect, then leave everything alive now (modules,
    the app, its routes, the ORM's metadata: about 130,000 objects) out of the cyclic
    garbage collector's later passes (``gc.freeze``). A full pass over them took about
    70 ms, every few seconds while tokens are written, holding up every request; after the
    freeze a full pass measured about 4 ms. Frozen objects are still freed when nothing
    refers to them; only a reference cycle among them would never be collected. Only
    ``apitokens serve`` does this: a test process that froze would keep the cycles of
    every app alive at that moment once later tests dropped them."""
    gc.collect()
    gc.freeze()


def raise_open_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit; return it.

    Worker processes inherit it. Each client connection takes a descriptor, and the usual
    default soft limit (1024) is what a few hundred idle connections would otherwise use up.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as error:
            log.warning("cannot raise the open-file limit", extra={"error": str(error)})
    return soft


def connection_bound(settings: Settings, open_files: int) -> int:
    """Connections one worker serves at once: the setting, lowered to fit the fd limit."""
    fits = max(1, open_files - FD_RESERVE)
    if settings.max_connections > fits:
        log.warning(
            "max_connections lowered to fit the open-file limit",
            extra={
                "max_connections": settings.max_connections,
                "open_file_limit": open_files,
                "effective": fits,
            },
        )
        return fits
    return settings.max_connections


def config_for(settings: Settings, max_connections: int) -> ServingConfig:
    from apitokens.http.connections import GuardedHttpToolsProtocol

    return ServingConfig(
        settings,
        max_connections,
        app="apitokens.serving:build_app",  # informative only: load_app() builds the app
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=None,
        access_log=False,
        server_header=False,
        # The application applies its own trusted-proxy rule (--trusted-proxies) to the
        # TCP peer; uvicorn's default would already have replaced the peer with
        # X-Forwarded-For for any local client.
        proxy_headers=False,
        timeout_keep_alive=settings.keep_alive_seconds,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        http=GuardedHttpToolsProtocol,  # 431, request deadline, connection bound
        # asyncio's own event loop, not uvloop: measured the same CPU per request quiet,
        # and beside the threads that write to the database (writes, the usage flush, the
        # feed poll) far fewer thread wake-ups; reads beside 20 writes/s kept 0.91x of
        # their quiet rate against 0.80x (docs/decisions.md, "asyncio's event loop").
        loop="asyncio",
        ws="none",  # no WebSocket route: an upgrade request is an ordinary HTTP request
        lifespan="on",
    )


def run(settings: Settings) -> None:
    """Serve the API until SIGTERM or SIGINT; exit 3 if the application cannot start."""
    logs.configure(settings.log_level, settings.log_format)
    open_files = raise_open_file_limit()
    config = config_for(settings, connection_bound(settings, open_files))
    if settings.workers == 1:
        server = uvicorn.Server(config)
        server.run()  # re-raises the SIGTERM it caught, after a clean shutdown
        if not server.started:
            sys.exit(STARTUP_FAILURE)
        return
    _run_workers(config)


def _run_workers(config: ServingConfig) -> None:
    metrics_dir = tempfile.mkdtemp(prefix="apitokens-metrics-")  # 0700, empty
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = metrics_dir  # inherited by the workers at spawn
    try:
        sock = config.bind_socket()
        supervisor = Multiprocess(config, sockets=[sock])
        supervisor.run()
        failed = any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(metrics_dir, ignore_errors=True)
    if failed:
        sys.exit(STARTUP_FAILURE)
