"""HTTP clients for talking to a test server."""

from __future__ import annotations

import functools
import ssl
from typing import Protocol

import httpx

API_KEY_HEADER = "X-API-Key"
TIMEOUT_SECONDS = 10.0


@functools.cache
def tls() -> ssl.SSLContext:
    """The TLS context every test client is given (``verify=tls()``), made once.

    Without ``verify``, httpx makes a context per client and reads the CA bundle into it:
    20-36 ms a client here, on clients of plain-HTTP servers that never use it. The
    multi-instance tests made 559 clients (19 s); the same context, made the same way
    (``httpx.create_ssl_context()``, what a client without ``verify`` makes), is shared.
    """
    return httpx.create_ssl_context()


class HasUrl(Protocol):
    @property
    def url(self) -> str: ...


def api(server: HasUrl | str, token: str | None = None) -> httpx.Client:
    """An ``httpx.Client`` for *server* (or a base URL) sending ``X-API-Key: token``.

    With ``token=None`` no key is sent (for 401 tests). Relative paths work:
    ``api(server, server.admin).get("/api-tokens")``. The caller closes the client
    (``with api(...) as client:``); the ``api`` fixture closes its clients itself.
    """
    base_url = server if isinstance(server, str) else server.url
    headers = {} if token is None else {API_KEY_HEADER: token}
    return httpx.Client(base_url=base_url, headers=headers, timeout=TIMEOUT_SECONDS, verify=tls())
