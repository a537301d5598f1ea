"""Helpers for the upstream-compatibility tests: in-process apps, the generated client."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from fastapi import FastAPI

from apitokens.bootstrap import admin_spec
from apitokens.domain.tokens import SYSTEM, Actor
from apitokens.http.app import create_app
from apitokens.settings import Settings
from apitokens.wiring import Services

SPEC = Path(__file__).with_name("upstream-openapi.json")
PACKAGE = "upstream_api_client"
BASE_URL = "http://apitokens.test"
EXTRA = ("reports:read", "reports:write", "billing.export")
OPERATIONS = ("list_", "create", "get", "update", "delete", "rotate")


def _generator() -> str:
    found = Path(sys.executable).with_name("openapi-python-client")
    return str(found) if found.exists() else "openapi-python-client"


def _generate(into: Path) -> None:
    """Generate the client package as ``into / PACKAGE``, atomically (one rename)."""
    work = Path(tempfile.mkdtemp(prefix="generating-", dir=into.parent))
    try:
        config = work / "config.yaml"
        config.write_text("post_hooks: []\n")  # no formatter run: ruff need not be on PATH
        command = [_generator(), "generate", "--path", str(SPEC), "--meta", "none"]
        command += ["--config", str(config), "--output-path", str(work / PACKAGE)]
        subprocess.run([*command, "--fail-on-warning"], check=True, capture_output=True)
        with contextlib.suppress(OSError):  # made by another session meanwhile: same content
            os.rename(work, into)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def load_generated_client() -> SimpleNamespace:
    """The package generated from the upstream document: ``Client``, each operation module
    (``list_``, ``create``, ``get``, ``update``, ``delete``, ``rotate``) and ``models``.

    Generated once per document and generator version, in the temporary directory."""
    digest = hashlib.sha256(SPEC.read_bytes()).hexdigest()[:16]
    generator = version("openapi-python-client")
    cache = Path(tempfile.gettempdir()) / f"apitokens-upstream-client-{generator}-{digest}"
    if not (cache / PACKAGE / "__init__.py").exists():
        _generate(cache)
    sys.path.insert(0, str(cache))
    try:
        modules = {
            name: importlib.import_module(f"{PACKAGE}.api.default.{name}") for name in OPERATIONS
        }
        return SimpleNamespace(
            Client=importlib.import_module(f"{PACKAGE}.client").Client,
            models=importlib.import_module(f"{PACKAGE}.models"),
            **modules,
        )
    finally:
        sys.path.remove(str(cache))


@dataclass
class InProcess:
    app: FastAPI
    services: Services
    admin: str  # the administrator token's value

    def http(self, token: str | None = None) -> httpx.AsyncClient:
        """A plain httpx client on the app, sending ``token`` (or none)."""
        headers = {"X-API-Key": token} if token else {}
        transport = httpx.ASGITransport(app=self.app)
        return httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers)

    def generated(self, package: SimpleNamespace, token: str) -> Any:
        """The generated ``Client``, talking to the app in process with ``token``."""
        client = package.Client(base_url=BASE_URL)  # a 401 (undocumented) is not raised
        client.set_async_httpx_client(self.http(token))
        return client


@contextlib.asynccontextmanager
async def running(url: str, extra: Sequence[str] = ()) -> AsyncIterator[InProcess]:
    """The app on ``url``, its lifespan started, with an administrator token holding every
    permission of the catalog (as ``apitokens bootstrap`` makes it)."""
    app = create_app(
        Settings(database_url=url, extra_permissions=tuple(extra), refusal_delay_seconds=0)
    )
    services: Services = app.state.services
    async with app.router.lifespan_context(app):
        issued = services.tokens.create(
            Actor("admin", SYSTEM), admin_spec(services.catalog, "admin")
        )
        yield InProcess(app, services, issued.value)
