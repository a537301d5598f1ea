"""What the generated OpenAPI document cannot learn from the code alone.

- The permission names: the catalog is known only at start (operators may add names), so
  ``ModifyAPIToken.permissions`` gets its ``enum`` here.
- Bounds the services check themselves (so that the messages are ours, not FastAPI's):
  ``limit``, ``gracePeriodSeconds``, the name's length, the number of CIDR blocks.
- Links: the ``id`` in the answer of create, update and rotate is what the ``{id}``
  operations take. Clients read them as documentation; schemathesis follows them to build
  stateful sequences (create, then get, update, rotate, delete the token it made).
"""

from __future__ import annotations

from typing import Any

from apitokens.domain.network import MAX_CIDR_BLOCKS
from apitokens.domain.permissions import PermissionCatalog
from apitokens.domain.validation import MAX_GRACE_PERIOD, MAX_NAME_LENGTH
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


def refine(document: dict[str, Any], catalog: PermissionCatalog) -> None:
    """Add the catalog, the bounds and the links to a generated document, in place."""
    schemas = document.get("components", {}).get("schemas", {})
    modify = schemas.get("ModifyAPIToken", {}).get("properties", {})
    if "permissions" in modify:
        modify["permissions"]["items"]["enum"] = list(catalog.names)
    if "name" in modify:
        modify["name"].update(minLength=1, maxLength=MAX_NAME_LENGTH)
    for option in modify.get("allowedCIDRBlocks", {}).get("anyOf", []):
        if option.get("type") == "array":
            option["maxItems"] = MAX_CIDR_BLOCKS
    paths = document.get("paths", {})
    for operations in paths.values():
        for operation in operations.values():
            _bound_query(operation.get("parameters", []))
    for path, method in _LINKED_ANSWERS:
        answer = paths.get(path, {}).get(method, {}).get("responses", {}).get("200")
        if answer is not None:
            answer["links"] = _LINKS


def _bound_query(parameters: list[dict[str, Any]]) -> None:
    for parameter in parameters:
        bounds = _QUERY_BOUNDS.get(parameter.get("name", ""))
        if bounds is None or parameter.get("in") != "query":
            continue
        for option in parameter.get("schema", {}).get("anyOf", [parameter.get("schema", {})]):
            if option.get("type") == "integer":
                option.update(minimum=bounds[0], maximum=bounds[1])
