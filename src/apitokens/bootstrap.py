"""The first token: created from the command line, on a database that may be brand new."""

from __future__ import annotations

from apitokens.domain.rules import build_spec
from apitokens.domain.tokens import SYSTEM, Actor
from apitokens.http.state import build_runtime
from apitokens.service.tokens import Issued
from apitokens.settings import Settings
from apitokens.storage.migrate import upgrade


def create_admin_token(settings: Settings, name: str) -> Issued:
    """Upgrade the schema, then create a token holding every permission of the catalog."""
    runtime = build_runtime(settings)
    try:
        upgrade(runtime.store.engine)
        spec = build_spec(runtime.catalog, name, runtime.catalog.names, [])
        return runtime.tokens.create(Actor(spec.name, SYSTEM), spec)
    finally:
        runtime.lifecycle.close()
        runtime.store.close()
