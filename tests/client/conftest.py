"""Fixtures for the client tests: clients of the real ``server`` (from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from apitokens.client import AsyncClient, Client


@pytest.fixture
def client(server: Any) -> Iterator[Client]:
    """A `Client` authenticated with the server's admin token (every permission)."""
    with Client(server.url, server.admin, retries=0) as admin_client:
        yield admin_client


@pytest.fixture
async def async_client(server: Any) -> AsyncIterator[AsyncClient]:
    """An `AsyncClient` authenticated with the server's admin token."""
    async with AsyncClient(server.url, server.admin, retries=0) as admin_client:
        yield admin_client
