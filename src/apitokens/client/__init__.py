"""Python client of the apitokens service (``/api-tokens``), built on httpx alone.

>>> from apitokens.client import Client
>>> with Client() as client:  # APITOKENS_URL, APITOKENS_TOKEN        # doctest: +SKIP
...     new = client.create("ci", ["OrganizationAPITokenRead"], ["10.0.0.0/8"])
...     for item in client.iter_tokens():
...         print(item.id, item.name)

`AsyncClient` is the asyncio twin. Failures raise subclasses of `APITokensError` that
carry the HTTP ``status_code`` and the server's ``message``.
"""

from typing import TYPE_CHECKING, Any

from apitokens.client.calls import UNSET
from apitokens.client.errors import (
    APITokensError,
    BadRequest,
    ConnectionFailed,
    Forbidden,
    InvalidResponse,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
)
from apitokens.client.models import Actor, APIToken, AuditEvent, AuditPage, TokenPage, Verification
from apitokens.client.sync_client import Client

if TYPE_CHECKING:
    from apitokens.client.async_client import AsyncClient

__all__ = [
    "UNSET",
    "APIToken",
    "APITokensError",
    "Actor",
    "AsyncClient",
    "AuditEvent",
    "AuditPage",
    "BadRequest",
    "Client",
    "ConnectionFailed",
    "Forbidden",
    "InvalidResponse",
    "NotFound",
    "RateLimited",
    "ServerError",
    "TokenPage",
    "Unauthorized",
    "Verification",
]


def __getattr__(name: str) -> Any:
    """`AsyncClient` on first use: it imports asyncio, which the synchronous client (and the
    ``apitokens`` command line, built on it) does without."""
    if name == "AsyncClient":
        from apitokens.client.async_client import AsyncClient

        return AsyncClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
