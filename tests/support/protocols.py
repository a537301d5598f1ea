"""Call signatures of the function-valued fixtures in ``tests/conftest.py``, for typing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import httpx

from support.clients import HasUrl
from support.inprocess import InProcessServer, ManualClock
from support.processes import RunningServer


class BootstrapToken(Protocol):
    """``bootstrap_token(database_url, name="admin", *, force=False) -> str``"""

    def __call__(self, database_url: str, name: str = "admin", *, force: bool = False) -> str: ...


class ServerFactory(Protocol):
    """``server_factory(database_url=None, env=None, args=None, bootstrap=True)``"""

    def __call__(
        self,
        database_url: str | None = None,
        env: Mapping[str, str | None] | None = None,
        args: Sequence[str] | None = None,
        bootstrap: bool = True,
    ) -> RunningServer: ...


class ApiClientFactory(Protocol):
    """``api(server, token=None) -> httpx.Client``"""

    def __call__(self, server: HasUrl | str, token: str | None = None) -> httpx.Client: ...


class AppFactory(Protocol):
    """``app_factory(database_url=None, env=None, args=None, bootstrap=True, clock=None)``"""

    def __call__(
        self,
        database_url: str | None = None,
        env: Mapping[str, str | None] | None = None,
        args: Sequence[str] | None = None,
        bootstrap: bool = True,
        clock: ManualClock | None = None,
    ) -> InProcessServer: ...
