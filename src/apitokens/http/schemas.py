"""Request and response bodies, exactly as the upstream contract names them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Permission = Annotated[str, Field(description="A permission name from the catalog")]


class ModifyAPIToken(BaseModel):
    """The body of create and update. Unknown fields are refused, not dropped."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(description="The name of the token", examples=["ci-deploy"])
    permissions: list[Permission] = Field(
        description="What the token may do", examples=[["OrganizationAPITokenRead"]]
    )
    allowedCIDRBlocks: list[str] | None = Field(
        default=None,
        description=(
            "The set of CIDR blocks that are allowed to use this API token. If empty, all "
            "CIDR blocks are allowed. On update, omitting it keeps the current blocks."
        ),
        examples=[["10.0.0.0/8", "2001:db8::/32"]],
    )
    expiresAt: Annotated[datetime | None, Field(strict=False)] = Field(
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
    permissions: list[str]
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
