"""What a reverse proxy asks of ``/verify``: the permissions one request needs."""

from __future__ import annotations

from collections.abc import Iterable

from apitokens.domain.permissions import PermissionCatalog


def required_permissions(catalog: PermissionCatalog, raw: Iterable[str]) -> tuple[str, ...]:
    """The permission names asked for, from repeatable and comma-separated values.

    Every name must be in the catalog, else ValidationFailed (400). A name no token can
    hold is a typo in the proxy's configuration: answering 403 would lock every caller out
    without a trace, while a 400 makes nginx log "auth request unexpected status" and fail
    closed with 500, so the operator sees it at once.
    """
    names = [part.strip() for value in raw for part in value.split(",") if part.strip()]
    return catalog.normalize(names, field="permission") if names else ()
