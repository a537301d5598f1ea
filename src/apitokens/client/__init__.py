"""Python client of the apitokens service (``/api-tokens``), built on httpx alone.

>>> from apitokens.client import Client
>>> with Client() as client:  # APITOKENS_URL, APITOKENS_TOKEN        # doctest: +SKIP
...     new = client.create("ci", ["OrganizationAPITokenRead"], ["10.0.0.0/8"])
...     for item in client.iter_tokens():
...         print(item.id, item.name)

`AsyncClient` is the asyncio twin. Failures raise subclasses of `APITokensError` that
carry the HTTP ``status_code`` and the server's ``message``.
"""

from apitokens.client.async_client import AsyncClient
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
