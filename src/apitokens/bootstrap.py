"""The first token: created from the command line, on a database that may be brand new."""

from __future__ import annotations

from apitokens.domain.tokens import SYSTEM, Actor
from apitokens.domain.validation import build_spec
from apitokens.service.tokens import Issued
from apitokens.settings import Settings
from apitokens.wiring import build


def create_admin_token(settings: Settings, name: str) -> Issued:
    """Upgrade the schema, then create a token holding every permission of the catalog."""
    services = build(settings)
    try:
        services.store.prepare()
        spec = build_spec(services.catalog, name, services.catalog.names, [])
        return services.tokens.create(Actor(spec.name, SYSTEM), spec)
    finally:
        services.store.close()
