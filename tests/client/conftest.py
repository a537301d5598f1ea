"""Fixtures for the client tests: clients of the app in process (tests/support/inprocess.py),
through the transport the clients accept."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from apitokens.client import AsyncClient, Client
from support.inprocess import InProcessServer


@pytest.fixture
def server(app_server: InProcessServer) -> InProcessServer:
    """The app on a fresh store of ``app_backend``, with an admin token."""
    return app_server


@pytest.fixture
def client(server: InProcessServer) -> Iterator[Client]:
    """A `Client` authenticated with the server's admin token (every permission)."""
    with Client(server.url, server.admin, retries=0, transport=server.transport()) as admin:
        yield admin


@pytest.fixture
async def async_client(server: InProcessServer) -> AsyncIterator[AsyncClient]:
    """An `AsyncClient` authenticated with the server's admin token."""
    transport = server.async_transport()
    async with AsyncClient(server.url, server.admin, retries=0, transport=transport) as admin:
        yield admin
