"""What the generated OpenAPI document cannot learn from the code alone.

The document tells the whole truth (issue 15): a request that satisfies it is accepted,
and what no schema keyword can say is in the descriptions and the 400 examples.

- The permission names: the catalog is known only at start (operators may add names), so
  ``ModifyAPIToken.permissions`` gets the upstream ``enum`` here,
  ``ModifyAPIToken.servicePermissions`` the operator's names, and ``/verify`` a pattern of
  both.
- Rules the services check themselves (so that the messages are ours, not FastAPI's):
  ``limit``, ``gracePeriodSeconds``, the name (patterns.py), CIDR blocks and their number,
  ``expiresAt`` (in the future and within the server's maximum lifetime: a pattern of
  the days that qualify, so the document is rebuilt when the date changes).
- Links: the ``id`` in the answer of create, update and rotate is what the ``{id}``
  operations take. Clients read them as documentation; schemathesis follows them to build
  stateful sequences (create, then get, update, rotate, delete the token it made).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from apitokens.domain.audit import ACTIONS
from apitokens.domain.network import MAX_CIDR_BLOCKS
from apitokens.domain.permissions import UPSTREAM_PERMISSIONS, PermissionCatalog
from apitokens.domain.validation import MAX_GRACE_PERIOD, MAX_NAME_LENGTH
from apitokens.http import patterns
from apitokens.service.pagination import MAX_LIMIT

_QUERY_BOUNDS = {
    "limit": (1, MAX_LIMIT),
    "gracePeriodSeconds": (0, int(MAX_GRACE_PERIOD.total_seconds())),
}

_TOKEN_PATH = "/api-tokens/{id}"  # noqa: S105 - a path, not a secret
_BY_ID = {"id": "$response.body#/id"}
_LINKS = {
    "GetToken": {"operationId": "api_token_get", "parameters": _BY_ID},
    "UpdateToken": {"operationId": "api_token_update", "parameters": _BY_ID},
    "RotateToken": {"operationId": "api_token_rotate", "parameters": _BY_ID},
    "DeleteToken": {"operationId": "api_token_delete", "parameters": _BY_ID},
}
_LINKED_ANSWERS = (
    ("/api-tokens", "post"),
    (_TOKEN_PATH, "post"),
    (f"{_TOKEN_PATH}/rotate", "post"),
)


def refine(
    document: dict[str, Any],
    catalog: PermissionCatalog,
    today: date,
    max_lifetime: timedelta | None = None,
) -> None:
    """Add the catalog, the rules and the links to a generated document, in place."""
    schemas = document.get("components", {}).get("schemas", {})
    modify = schemas.get("ModifyAPIToken", {}).get("properties", {})
    if "permissions" in modify:
        modify["permissions"]["items"]["enum"] = list(UPSTREAM_PERMISSIONS)
    if "servicePermissions" in modify:
        modify["servicePermissions"] = _service_permissions(
            modify["servicePermissions"], catalog.extra
        )
    if "name" in modify:
        modify["name"] = _NAME
    if "allowedCIDRBlocks" in modify:
        modify["allowedCIDRBlocks"] = _blocks(modify["allowedCIDRBlocks"])
    if "expiresAt" in modify:
        modify["expiresAt"] = _expiry(today, max_lifetime)
    paths = document.get("paths", {})
    for path, operations in paths.items():
        for operation in operations.values():
            _cursor(path, operation.get("parameters", []))
            _bound_query(operation.get("parameters", []))
            _verify_requirements(operation.get("parameters", []), catalog)
            _examples(operation.get("responses", {}).get("400"))
    for path, method in _LINKED_ANSWERS:
        answer = paths.get(path, {}).get(method, {}).get("responses", {}).get("200")
        if answer is not None:
            answer["links"] = _LINKS


_NAME = {
    "type": "string",
    "minLength": 1,
    "pattern": patterns.name_pattern(),
    "description": (
        f"The name of the token: 1 to {MAX_NAME_LENGTH} characters once white space around "
        "it is trimmed, with no control character (C0, C1), bidirectional control, line or "
        "paragraph separator, or lone surrogate."
    ),
    "examples": ["ci-deploy"],
}


def _blocks(generated: dict[str, Any]) -> dict[str, Any]:
    return {
        "anyOf": [
            {
                "type": "array",
                "maxItems": MAX_CIDR_BLOCKS,
                "items": {
                    "type": "string",
                    "pattern": patterns.CIDR_PATTERN,
                    "description": (
                        "An IPv4 or IPv6 network in CIDR notation with no host bits set "
                        "(10.0.0.0/8, not 10.0.0.1/8), or a bare address meaning /32 or /128"
                    ),
                },
            },
            {"type": "null"},
        ],
        "description": (
            f"{generated.get('description', '')} At most {MAX_CIDR_BLOCKS} blocks, "
            "duplicates counted (and then collapsed)."
        ).strip(),
        "examples": generated.get("examples", [["10.0.0.0/8", "2001:db8::/32"]]),
    }


def _service_permissions(generated: dict[str, Any], extra: tuple[str, ...]) -> dict[str, Any]:
    items: dict[str, Any] = {"type": "string", "enum": list(extra)}
    array: dict[str, Any] = {"type": "array", "items": items}
    if not extra:  # an empty enum is not valid JSON Schema: say "no items" instead
        array = {"type": "array", "items": {"type": "string"}, "maxItems": 0}
    return {
        "anyOf": [array, {"type": "null"}],
        "description": generated.get("description", ""),
        "examples": [list(extra[:1])],
    }


def _expiry(today: date, maximum: timedelta | None) -> dict[str, Any]:
    limit = (
        "never (null) or any time in the future"
        if maximum is None
        else f"within {int(maximum.total_seconds())} seconds from now (this server's maximum "
        "lifetime; null is refused)"
    )
    description = (
        "Extension: when the token stops working, an RFC 3339 time with a zone. It must be "
        f"in the future, and {limit}. On update, omitting it keeps the current expiry. The "
        "pattern lists the days that qualify for any offset: times on the first and last "
        "qualifying days outside it may be accepted too."
    )
    pattern = patterns.expiry_pattern(today, maximum)
    text: dict[str, Any] = (
        {"type": "string", "pattern": pattern} if pattern else {"type": "string", "not": {}}
    )
    options = [text] if maximum is not None else [text, {"type": "null"}]
    return {"anyOf": options, "description": description}


def _cursor(path: str, parameters: list[dict[str, Any]]) -> None:
    for parameter in parameters:
        if parameter.get("in") != "query":
            continue
        if parameter.get("name") == "cursor":
            pattern = (
                patterns.EVENT_CURSOR_PATTERN
                if path == "/audit-events"
                else patterns.TOKEN_CURSOR_PATTERN
            )
            parameter["schema"] = {"type": "string", "pattern": pattern}
            parameter["description"] = "The `next` of the previous page. Any other value is a 400."
        if parameter.get("name") == "action" and path == "/audit-events":
            parameter["schema"] = {"type": "string", "enum": list(ACTIONS)}


def _verify_requirements(parameters: list[dict[str, Any]], catalog: PermissionCatalog) -> None:
    names = patterns.permission_list_pattern(catalog.names)
    for parameter in parameters:
        if parameter.get("in") == "query" and parameter.get("name") == "permission":
            parameter["schema"] = {
                "type": "array",
                "items": {"type": "string", "pattern": names},
            }
            parameter["description"] = (
                "Required permission(s): catalog names, comma-separated or repeated; all are "
                "needed. An empty or unknown name is a 400, and so is any other parameter."
            )
        if parameter.get("in") == "header" and parameter.get("name", "").lower() == (
            "x-required-permission"
        ):
            parameter["schema"] = {"type": "string", "pattern": names}
            parameter["description"] = (
                "Required permission(s), comma-separated, as a header the proxy sets. Empty "
                "(an unset proxy variable) or unknown is a 400, and so is any other "
                "X-Required-* header."
            )


_BAD_REQUEST_EXAMPLES = {
    "name": "name: must not be empty",
    "permission": "permissions: unknown permission(s) PolicyRaed; accepted names are: ...",
    "service": (
        "permissions: reports:read: not an upstream permission; send the permissions of "
        "other services in servicePermissions"
    ),
    "cidr": "allowedCIDRBlocks: '10.0.0.1/8' has host bits set; did you mean '10.0.0.0/8'?",
    "past": "expiresAt: must be in the future",
    "lifetime": "expiresAt: must be within 90 days from now on this server",
    "grace": "gracePeriodSeconds: must be between 0 and 604800",
    "cursor": (
        "cursor: is not a valid pagination cursor; pass the `next` value of the previous page"
    ),
    "verify": "permission: must name a permission; an empty one is a configuration error",
}


def _examples(answer: dict[str, Any] | None) -> None:
    if answer is None:
        return
    for media in answer.get("content", {}).values():
        media["examples"] = {
            key: {"value": {"message": text, "code": "bad_request"}}
            for key, text in _BAD_REQUEST_EXAMPLES.items()
        }


def _bound_query(parameters: list[dict[str, Any]]) -> None:
    for parameter in parameters:
        bounds = _QUERY_BOUNDS.get(parameter.get("name", ""))
        if bounds is None or parameter.get("in") != "query":
            continue
        for option in parameter.get("schema", {}).get("anyOf", [parameter.get("schema", {})]):
            if option.get("type") == "integer":
                option.update(minimum=bounds[0], maximum=bounds[1])
