"""The first token: created from the command line, on a database that may be brand new."""

from __future__ import annotations

from apitokens.domain.permissions import UPSTREAM_PERMISSIONS, PermissionCatalog
from apitokens.domain.tokens import SYSTEM, Actor, Token, TokenSpec
from apitokens.domain.validation import build_spec
from apitokens.service.tokens import Issued
from apitokens.settings import Settings
from apitokens.storage.port import Store
from apitokens.wiring import build

_PAGE = 1000


class BootstrapTokenExists(Exception):
    """A token made by the command line (actor type ``system``) exists already."""

    def __init__(self, token: Token) -> None:
        super().__init__(f"a bootstrap token exists already: {token.id} ({token.name!r})")
        self.token = token


def existing_bootstrap_token(store: Store) -> Token | None:
    """The newest token created by the command line (``createdBy.type == "system"``), if any.

    Walks the listing a page at a time: bootstrap is rare and the listing is indexed, so no
    query of its own is needed in the storage port.
    """
    after = None
    while True:
        with store.unit() as unit:
            page = unit.tokens.page(_PAGE, after)
        for token in page:
            if token.created_by.type == SYSTEM:
                return token
        if len(page) < _PAGE:
            return None
        after = (page[-1].created_at, page[-1].id)


def admin_spec(catalog: PermissionCatalog, name: str, *, never_expires: bool = False) -> TokenSpec:
    """Every permission of the catalog: the upstream names, and the operator's in their field.

    ``never_expires``: an explicit "no expiry" (else the server's default lifetime applies).
    """
    return build_spec(
        catalog,
        name,
        UPSTREAM_PERMISSIONS,
        [],
        None,
        never_expires,
        service_permissions=catalog.extra,
    )


def create_admin_token(settings: Settings, name: str, *, force: bool = False) -> Issued:
    """Upgrade the schema, then create a token holding every permission of the catalog.

    Raises `BootstrapTokenExists` when a bootstrap token exists already, unless ``force``:
    a second all-permission token made by mistake is a second secret to lose.
    """
    services = build(settings)
    try:
        services.store.prepare()
        if not force and (existing := existing_bootstrap_token(services.store)) is not None:
            raise BootstrapTokenExists(existing)
        # The first token does not expire unless the server's maximum lifetime says it
        # must (a default lifetime is for tokens made through the API without expiresAt).
        never = settings.max_lifetime_seconds is None
        spec = admin_spec(services.catalog, name, never_expires=never)
        return services.tokens.create(Actor(spec.name, SYSTEM), spec)
    finally:
        services.lifecycle.close()
        services.store.close()
