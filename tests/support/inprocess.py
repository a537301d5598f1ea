"""The application in the test process: ``create_app(...)`` behind an httpx transport.

No server process and no socket: requests go through httpx's ASGI transport to the app,
whose lifespan (schema upgrade, epoch poll, change listener, final usage flush) runs on
an event loop in a background thread (an anyio blocking portal), as uvicorn would run it.

- ``ManualClock``: the app's clock; a test steps it (``advance``) instead of sleeping.
  Every request moves it on by one millisecond first, as real time would, so requests
  made one after the other never share a timestamp.
- ``InProcessServer``: the app on one store (a ``MemoryStore``, or the database a URL
  names), with a bootstrapped admin token. ``client(token)`` gives an ``httpx.Client``;
  ``flush()`` writes pending usage and audit events now (the periodic flush and the
  epoch poll never fire during a test); ``restart()`` is a clean shutdown and a new app
  on the same store; ``log_text()`` is everything logged meanwhile, as JSON lines.

The attribute names follow ``support.processes.RunningServer`` (``url``, ``admin``,
``database_url``, ``stop()``, ``restart()``, ``log_text()``), so a test can take either.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import anyio.from_thread
import httpx
from fastapi import FastAPI

from apitokens.bootstrap import admin_spec
from apitokens.domain.clock import to_millis
from apitokens.domain.tokens import SYSTEM, Actor
from apitokens.http.app import create_app
from apitokens.logs import JsonFormatter
from apitokens.settings import Settings
from apitokens.storage.memory import MemoryStore
from apitokens.storage.port import Store
from apitokens.wiring import Services
from support.clients import API_KEY_HEADER, TIMEOUT_SECONDS

ENV_PREFIX = "APITOKENS_"
PEER = "127.0.0.1"
REQUEST_STEP = timedelta(milliseconds=1)
NEVER_SECONDS = 10**9
"""Interval given to the background loops (usage flush, epoch poll): they never fire."""

EnvOverrides = Mapping[str, str | None]

_counter = itertools.count(1)
_servers: weakref.WeakValueDictionary[str, InProcessServer] = weakref.WeakValueDictionary()


class ManualClock:
    """A ``Clock`` that stands still until told: ``now()`` is UTC at millisecond precision."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = to_millis(start or datetime.now(UTC))
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move time on by ``seconds`` (rounded to milliseconds); return the new time."""
        return self.step(timedelta(milliseconds=round(seconds * 1000)))

    def step(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("time only moves forward")
        with self._lock:
            self._now = to_millis(self._now + delta)
            return self._now

    def advance_past(self, moment: datetime, margin: float = 0.001) -> datetime:
        """Move time to ``margin`` seconds after ``moment`` (no move if already past it)."""
        target = moment + timedelta(seconds=margin)
        now = self.now()
        return self.step(target - now) if target > now else now


class _IsolatedSettings(Settings):
    """Settings from the given values only: the shell's ``APITOKENS_*`` never leak in."""

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[Any], init_settings: Any, *_sources: Any, **_named: Any
    ) -> tuple[Any, ...]:
        return (init_settings,)


def isolated_settings(
    database_url: str, env: EnvOverrides | None = None, args: Sequence[str] = ()
) -> Settings:
    """The ``Settings`` that ``apitokens serve --database-url URL *args`` would build with
    ``env`` as its environment, and nothing from this process's environment."""
    fields: dict[str, Any] = {"database_url": database_url}
    for name, value in (env or {}).items():
        if not name.startswith(ENV_PREFIX):
            raise ValueError(f"not an apitokens setting: {name}")
        if value is not None:
            fields[name.removeprefix(ENV_PREFIX).lower()] = value
    options = list(args)
    if len(options) % 2:
        raise ValueError(f"options must come in --name value pairs: {options}")
    for option, value in zip(options[::2], options[1::2], strict=True):
        if not option.startswith("--"):
            raise ValueError(f"not an option: {option}")
        fields[option.removeprefix("--").replace("-", "_")] = value
    return _IsolatedSettings(**fields)


def bootstrap_here(database_url: str, env: EnvOverrides | None = None, name: str = "admin") -> str:
    """What ``apitokens bootstrap --name NAME --database-url URL`` does with ``env`` as its
    environment, run in this process: a fixture that needs only the token spares a new
    interpreter (the command itself is tested as a process in test_infrastructure)."""
    from apitokens.bootstrap import create_admin_token

    settings = isolated_settings(
        database_url,
        {key: value for key, value in (env or {}).items() if key in _SETTINGS_BUT_URL},
    )
    return create_admin_token(settings, name).value


_SETTINGS_BUT_URL = frozenset(
    f"{ENV_PREFIX}{field.upper()}" for field in Settings.model_fields if field != "database_url"
)
"""The environment's settings, but the URL given wins, as ``--database-url`` does."""


def settings_for(
    database_url: str, env: EnvOverrides | None = None, args: Sequence[str] = ()
) -> Settings:
    """``isolated_settings``, with background loops whose intervals never elapse."""
    settings = isolated_settings(database_url, env, args)
    # Past validation on purpose: Settings caps these intervals, and a test must never
    # depend on a loop firing in real time (it calls ``flush()`` instead).
    update: dict[str, Any] = {
        "last_used_flush_seconds": NEVER_SECONDS,
        "cache_poll_seconds": NEVER_SECONDS,
    }
    if REFUSAL_DELAY not in (env or {}) and "--refusal-delay-seconds" not in args:
        update["refusal_delay_seconds"] = 0.0  # real time; tests/service tests the wait
    return settings.model_copy(update=update)


REFUSAL_DELAY = "APITOKENS_REFUSAL_DELAY_SECONDS"


class _AsyncChunks(httpx.AsyncByteStream):
    """A request body given as a sync iterator (a chunked upload), for the ASGI transport."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


class PortalTransport(httpx.BaseTransport):
    """A sync transport into the app, through its server's event loop; ``peer`` is the
    TCP client address the app sees."""

    def __init__(self, server: InProcessServer, peer: str = PEER, port: int = 50000) -> None:
        self._server = server
        self._peer = (peer, port)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        server = self._server
        portal, app = server.running()
        server.clock.step(REQUEST_STEP)
        stream = request.stream
        if not isinstance(stream, httpx.AsyncByteStream):
            assert isinstance(stream, Iterable)
            stream = _AsyncChunks(stream)
        forwarded = httpx.Request(
            request.method,
            request.url,
            headers=request.headers,
            stream=stream,
            extensions=request.extensions,
        )
        asgi = httpx.ASGITransport(app=app, client=self._peer)

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            response = await asgi.handle_async_request(forwarded)
            content = await response.aread()
            return response.status_code, response.headers.raw, content

        status, headers, content = portal.call(call)
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(content))


class ThreadedAsyncTransport(httpx.AsyncBaseTransport):
    """An async transport into the app: the sync ``PortalTransport`` run in a worker
    thread, so an async test's loop and the app's loop stay apart."""

    def __init__(self, inner: PortalTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        content = await request.aread()
        sync_request = httpx.Request(
            request.method, request.url, headers=request.headers, content=content
        )
        return await anyio.to_thread.run_sync(self._inner.handle_request, sync_request)


class _LogCapture(logging.Handler):
    """What the server would log while installed, formatted as its JSON lines.

    The ``apitokens`` loggers are at the server's level meanwhile; records of the test's
    own HTTP clients (``httpx``, ``httpcore``) are not the server's and are left out.
    """

    CLIENT_LOGGERS = ("httpx", "httpcore")

    def __init__(self, level: str) -> None:
        super().__init__(logging.NOTSET)
        self.setFormatter(JsonFormatter())
        self._buffer = io.StringIO()
        self._level = logging.getLevelName(level.upper())
        self._previous_level: int | None = None
        self._buffer_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".", 1)[0] in self.CLIENT_LOGGERS:
            return
        line = self.format(record)
        with self._buffer_lock:
            self._buffer.write(line + "\n")

    def install(self) -> None:
        app_logger = logging.getLogger("apitokens")
        self._previous_level = app_logger.level
        app_logger.setLevel(self._level)
        logging.getLogger().addHandler(self)

    def remove(self) -> None:
        logging.getLogger().removeHandler(self)
        if self._previous_level is not None:
            logging.getLogger("apitokens").setLevel(self._previous_level)
            self._previous_level = None

    def text(self) -> str:
        with self._buffer_lock:
            return self._buffer.getvalue()


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The app's lifespan, as uvicorn runs it around serving."""
    async with app.router.lifespan_context(app):
        yield


def create_admin(services: Services, name: str) -> str:
    """What ``apitokens bootstrap`` does, on the running app's services."""
    never = services.settings.max_lifetime_seconds is None  # as bootstrap.py decides
    spec = admin_spec(services.catalog, name, never_expires=never)
    return services.tokens.create(Actor(spec.name, SYSTEM), spec).value


class InProcessServer:
    """``create_app(settings)`` on one store and clock, its lifespan running while started.

    ``backend`` names the store: ``"memory"`` (a ``MemoryStore`` kept across restarts) or
    the backend of ``database_url`` (``"sqlite"``, ``"postgresql"``).
    """

    def __init__(
        self,
        database_url: str,
        *,
        backend: str,
        env: EnvOverrides | None = None,
        args: Sequence[str] = (),
        clock: ManualClock | None = None,
        bootstrap: bool = True,
    ) -> None:
        self.database_url = database_url
        self.backend = backend
        self.settings = settings_for(database_url, env, args)
        self.clock = clock or ManualClock()
        self.url = f"http://apitokens-{next(_counter)}.test"
        self.store: Store | None = MemoryStore() if backend == "memory" else None
        self._bootstrap = bootstrap
        self._admin: str | None = None
        self._app: FastAPI | None = None
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._stack: ExitStack | None = None
        self._log = _LogCapture(self.settings.log_level)
        self._log_installed = False
        self._clients: list[httpx.Client] = []
        _servers[self.url] = self

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"<{type(self).__name__} {self.backend} {state} db={self.database_url!r}>"

    # -- life ----------------------------------------------------------------------------

    def _create_app(self) -> FastAPI:
        return create_app(self.settings, store=self.store, clock=self.clock)

    def start(self) -> Self:
        if self.is_running():
            raise RuntimeError(f"{self!r} is already running")
        if not self._log_installed:
            self._log.install()
            self._log_installed = True
        stack = ExitStack()
        try:
            portal = stack.enter_context(anyio.from_thread.start_blocking_portal())
            app = self._create_app()
            stack.enter_context(portal.wrap_async_context_manager(_lifespan(app)))
        except BaseException:
            stack.close()
            raise
        self._stack, self._portal, self._app = stack, portal, app
        if self._bootstrap and self._admin is None:
            self._admin = create_admin(self.services, "admin")
        return self

    def stop(self) -> int:
        """A clean shutdown (the lifespan's end: the last usage flush); returns 0 like a
        server process that exited cleanly. Stopping a stopped server does nothing."""
        stack, self._stack, self._portal, self._app = self._stack, None, None, None
        if stack is not None:
            stack.close()
        return 0

    def restart(self) -> Self:
        """A clean shutdown and a new app on the same store and clock (caches, pending
        usage and limiter counts start empty, as in a new process)."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop, close the clients made here and stop capturing logs."""
        try:
            self.stop()
        finally:
            for client in self._clients:
                client.close()
            if self._log_installed:
                self._log.remove()
                self._log_installed = False

    def is_running(self) -> bool:
        return self._app is not None

    def __enter__(self) -> Self:
        return self if self.is_running() else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def running(self) -> tuple[anyio.from_thread.BlockingPortal, FastAPI]:
        if self._portal is None or self._app is None:
            raise httpx.ConnectError(f"{self!r} is not running")
        return self._portal, self._app

    # -- what tests use ------------------------------------------------------------------

    @property
    def admin(self) -> str:
        """Value of a token holding every permission (what ``apitokens bootstrap`` makes)."""
        if self._admin is None:
            raise RuntimeError("this server was started with bootstrap=False: it has no admin")
        return self._admin

    @property
    def app(self) -> FastAPI:
        return self.running()[1]

    @property
    def services(self) -> Services:
        """The running app's services (``wiring.build``)."""
        services: Services = self.app.state.services
        return services

    def create_admin(self, name: str) -> str:
        """Another token holding every permission, made as ``apitokens bootstrap`` does."""
        return create_admin(self.services, name)

    def flush(self) -> None:
        """Write pending usage (``lastUsedAt``, ``lastUsedIPs``) and audit events now, as
        the periodic flush would (its metrics included)."""
        self.services.background.flush()

    def poll(self) -> None:
        """Follow the change feed now, as the periodic poll would."""
        self.services.freshness.apply()

    def transport(self, peer: str = PEER) -> PortalTransport:
        return PortalTransport(self, peer)

    def async_transport(self, peer: str = PEER) -> ThreadedAsyncTransport:
        return ThreadedAsyncTransport(self.transport(peer))

    def client(
        self,
        token: str | None = None,
        *,
        peer: str = PEER,
        headers: Mapping[str, str] | None = None,
        **options: Any,
    ) -> httpx.Client:
        """An ``httpx.Client`` of this app sending ``X-API-Key: token`` (none if ``None``),
        from TCP peer ``peer``; closed with the server."""
        sent = dict(headers or {})
        if token is not None:
            sent[API_KEY_HEADER] = token
        options.setdefault("timeout", TIMEOUT_SECONDS)
        client = httpx.Client(
            base_url=self.url, transport=self.transport(peer), headers=sent, **options
        )
        self._clients.append(client)
        return client

    def log_text(self) -> str:
        """Everything logged while this server ran, one JSON object per line."""
        return self._log.text()

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def lookup(url: str) -> InProcessServer | None:
    """The in-process server whose ``url`` this is (tests pass ``server.url`` around)."""
    return _servers.get(url.rstrip("/"))
