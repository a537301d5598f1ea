"""The permission catalog: the upstream names plus any an operator adds for other services."""

from __future__ import annotations

import re
from collections.abc import Iterable

from apitokens.domain.errors import ValidationFailed

UPSTREAM_PERMISSIONS: tuple[str, ...] = (
    "AIRunAsModify",
    "AlertModify",
    "AlertRead",
    "BulkUpload",
    "BulkUploadValidate",
    "CloudsecSourceModify",
    "CloudsecSourceRead",
    "DataAnalyticsModify",
    "DataAnalyticsRead",
    "DestinationModify",
    "DestinationRead",
    "GeneralSettingsModify",
    "GeneralSettingsRead",
    "LogSourceModify",
    "LogSourceRawDataRead",
    "LogSourceRead",
    "LookupModify",
    "LookupRead",
    "ManageAIResponses",
    "ManageAISkills",
    "ManageScheduledPrompts",
    "McpServerModify",
    "McpServerRead",
    "NotificationsSend",
    "OrganizationAPITokenModify",
    "OrganizationAPITokenRead",
    "PolicyModify",
    "PolicyRead",
    "ResourceModify",
    "ResourceRead",
    "RuleModify",
    "RuleRead",
    "RunPantherAI",
    "SummaryRead",
    "UserModify",
    "UserRead",
    "ViewAIPrivateResponses",
    "ViewAISkills",
    "ViewScheduledPrompts",
)

UPSTREAM_SET = frozenset(UPSTREAM_PERMISSIONS)

TOKEN_READ = "OrganizationAPITokenRead"  # noqa: S105 - a permission name
TOKEN_MODIFY = "OrganizationAPITokenModify"  # noqa: S105

_EXTRA_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,127}$")


def upstream_of(held: Iterable[str]) -> list[str]:
    """The upstream names among ``held``: what the API's ``permissions`` field shows."""
    return [name for name in held if name in UPSTREAM_SET]


def service_of(held: Iterable[str]) -> list[str]:
    """The other names among ``held``: what ``servicePermissions`` shows (extension)."""
    return [name for name in held if name not in UPSTREAM_SET]


class PermissionCatalog:
    """The set of permission names a token may hold.

    Holds the 39 upstream names and, beside them, names an operator defines for the other
    services it protects through ``/verify``. Order is the catalog's, so output is stable.
    """

    def __init__(self, extra: Iterable[str] = ()) -> None:
        names = list(UPSTREAM_PERMISSIONS)
        for name in extra:
            if not _EXTRA_NAME.match(name):
                raise ValueError(f"invalid permission name in the catalog: {name!r}")
            if name not in names:
                names.append(name)
        self.names: tuple[str, ...] = tuple(names)
        self.extra: tuple[str, ...] = tuple(names[len(UPSTREAM_PERMISSIONS) :])
        self._rank = {name: index for index, name in enumerate(self.names)}

    def __contains__(self, name: object) -> bool:
        return name in self._rank

    def normalize(self, requested: Iterable[str], field: str = "permissions") -> tuple[str, ...]:
        """Return the requested names deduplicated, in catalog order.

        Raises ValidationFailed naming the unknown names and listing the accepted ones.
        """
        wanted = set(requested)
        unknown = sorted(wanted - self._rank.keys())
        if unknown:
            raise ValidationFailed(
                field,
                f"unknown permission(s) {', '.join(unknown)}; "
                f"accepted names are: {', '.join(self.names)}",
            )
        return tuple(sorted(wanted, key=self._rank.__getitem__))

    def normalize_upstream(self, requested: Iterable[str]) -> tuple[str, ...]:
        """The ``permissions`` of a request body: upstream names only, in catalog order.

        An operator's extra name here is refused with a message pointing at
        ``servicePermissions``: upstream clients must never receive one in ``permissions``.
        """
        wanted = set(requested)
        misplaced = sorted(name for name in wanted - UPSTREAM_SET if name in self._rank)
        if misplaced:
            raise ValidationFailed(
                "permissions",
                f"{', '.join(misplaced)}: not an upstream permission; send the permissions "
                "of other services in servicePermissions",
            )
        unknown = sorted(wanted - UPSTREAM_SET)
        if unknown:
            raise ValidationFailed(
                "permissions",
                f"unknown permission(s) {', '.join(unknown)}; accepted names are: "
                f"{', '.join(UPSTREAM_PERMISSIONS)}",
            )
        return tuple(sorted(wanted, key=self._rank.__getitem__))

    def normalize_service(self, requested: Iterable[str]) -> tuple[str, ...]:
        """The ``servicePermissions`` of a request body: the operator's extra names only."""
        wanted = set(requested)
        misplaced = sorted(wanted & UPSTREAM_SET)
        if misplaced:
            raise ValidationFailed(
                "servicePermissions",
                f"{', '.join(misplaced)}: an upstream permission; send it in permissions",
            )
        unknown = sorted(wanted - self._rank.keys())
        if unknown:
            accepted = (
                f"accepted names are: {', '.join(self.extra)}"
                if self.extra
                else "this server defines none (APITOKENS_EXTRA_PERMISSIONS)"
            )
            raise ValidationFailed(
                "servicePermissions", f"unknown permission(s) {', '.join(unknown)}; {accepted}"
            )
        return tuple(sorted(wanted, key=self._rank.__getitem__))
