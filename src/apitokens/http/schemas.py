"""Request and response bodies, exactly as the upstream contract names them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from apitokens.domain.text import lone_surrogate


def valid_unicode(text: str) -> str:
    """Refuse a lone surrogate (JSON can escape one, nothing can store or print it)."""
    bad = lone_surrogate(text)
    if bad is not None:
        raise ValueError(f"must be valid Unicode text, not a lone surrogate ({bad})")
    return text


Text = Annotated[str, AfterValidator(valid_unicode)]
Permission = Annotated[Text, Field(description="A permission name from the catalog")]

_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)


def rfc3339(raw: Any) -> datetime | None:
    """An RFC 3339 time with a zone (``Z`` or an offset), and nothing else: no number, no
    date alone, no time without a zone."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValueError("must be a string: an RFC 3339 time such as 2030-01-01T00:00:00Z")
    found = _RFC3339.fullmatch(raw)
    if found is None:
        raise ValueError("must be an RFC 3339 time with a zone, such as 2030-01-01T00:00:00Z")
    year, month, day, hour, minute, second = (int(part) for part in found.groups()[:6])
    fraction, utc, sign, zone_hours, zone_minutes = found.groups()[6:]
    try:
        zone = UTC
        if not utc:
            offset = timedelta(hours=int(zone_hours), minutes=int(zone_minutes))
            zone = timezone(-offset if sign == "-" else offset)
        micros = int((fraction or "0")[:6].ljust(6, "0"))
        return datetime(year, month, day, hour, minute, second, micros, tzinfo=zone)
    except ValueError:
        raise ValueError(f"{raw!r} is not a valid date and time") from None


class ModifyAPIToken(BaseModel):
    """The body of create and update. Unknown fields are refused, not dropped."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Text = Field(description="The name of the token", examples=["ci-deploy"])
    permissions: list[Permission] = Field(
        description="What the token may do: names of the upstream catalog only",
        examples=[["OrganizationAPITokenRead"]],
    )
    servicePermissions: list[Permission] | None = Field(
        default=None,
        description=(
            "Extension: permissions for the other services this server protects through "
            "/verify (the operator's APITOKENS_EXTRA_PERMISSIONS), granted like permissions "
            "(only those the caller holds). On update, omitting it (or null) keeps the "
            "current ones; [] removes them."
        ),
        examples=[["reports:read"]],
    )
    allowedCIDRBlocks: list[Text] | None = Field(
        default=None,
        description=(
            "The set of CIDR blocks that are allowed to use this API token. If empty, all "
            "CIDR blocks are allowed. On update, omitting it keeps the current blocks."
        ),
        examples=[["10.0.0.0/8", "2001:db8::/32"]],
    )
    expiresAt: Annotated[datetime | None, BeforeValidator(rfc3339)] = Field(
        default=None,
        description=(
            "Extension: when the token stops working (RFC 3339). Null means never, within "
            "the server's maximum lifetime. On update, omitting it keeps the current expiry."
        ),
    )


class Actor(BaseModel):
    id: str
    type: str = Field(description="`api-token` or `system`")


class APIToken(BaseModel):
    id: str = Field(description="The unique identifier of the token")
    name: str
    permissions: list[str] = Field(description="Upstream permission names only")
    servicePermissions: list[str] = Field(
        description=(
            "Extension: the token's permissions for other services (the operator's extra "
            "names, checked by /verify); always present, [] when none"
        ),
    )
    allowedCIDRBlocks: list[str]
    createdAt: str = Field(description="RFC 3339, UTC, milliseconds")
    createdBy: Actor | None = None
    updatedAt: str | None = None
    updatedBy: Actor | None = None
    rotatedAt: str | None = None
    lastUsedAt: str | None = Field(
        default=None, description="The last successful authentication (may lag a few seconds)"
    )
    lastUsedIPs: list[str] = Field(
        default_factory=list, description="Extension: the last 5 distinct client addresses"
    )
    expiresAt: str | None = Field(default=None, description="Null when the token never expires")
    value: str | None = Field(
        default=None, description="The secret; only in the responses of create and rotate"
    )


class ListResp(BaseModel):
    results: list[APIToken]
    next: str | None = Field(default=None, description="Pass as `cursor` for the next page")


class ErrorBody(BaseModel):
    message: str = Field(description="A human readable reason")
    code: str | None = Field(default=None, description="A stable machine-readable code")


class AuditActor(BaseModel):
    id: str
    type: str


class AuditEventOut(BaseModel):
    id: str
    action: str
    tokenId: str | None
    actor: AuditActor | None
    clientIP: str | None
    at: str
    detail: dict[str, object]


class AuditList(BaseModel):
    results: list[AuditEventOut]
    next: str | None = None
