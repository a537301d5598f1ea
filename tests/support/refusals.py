"""Address refusals say little to the caller; the audit trail records the address judged.

The 403 for a disallowed address names neither the address nor the token's blocks, so a
test that needs to know which address the server judged reads the audit trail
(``auth.address_refused``, with ``clientIP``) instead of the message.
"""

from __future__ import annotations

from typing import Protocol

import httpx

WRONG_ADDRESS = "this API key may not be used from this address (see its allowedCIDRBlocks)"
UNKNOWN = "an unknown address"


class Flushes(Protocol):
    def flush(self) -> None: ...


def assert_refused_from(
    server: Flushes, admin: httpx.Client, response: httpx.Response, address: str
) -> None:
    """``response`` is the 403 for a disallowed address, judged to be ``address``
    (``UNKNOWN``: no address could be told, e.g. junk in X-Forwarded-For)."""
    assert response.status_code == 403, response.text
    assert response.json()["message"] == WRONG_ADDRESS
    server.flush()  # refusals are recorded with the coalesced usage
    answer = admin.get("/audit-events", params={"action": "auth.address_refused", "limit": 1})
    assert answer.status_code == 200, answer.text
    newest = answer.json()["results"][0]
    assert newest["clientIP"] == (None if address == UNKNOWN else address), newest
