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

TOKEN_READ = "OrganizationAPITokenRead"  # noqa: S105 - a permission name
TOKEN_MODIFY = "OrganizationAPITokenModify"  # noqa: S105

_EXTRA_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,127}$")


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
