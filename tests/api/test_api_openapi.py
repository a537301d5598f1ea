"""The OpenAPI document describes every operation, parameter, response and error body."""

from __future__ import annotations

from typing import Any

import pytest
from api_support import TOKEN_FIELDS

from support.inprocess import InProcessServer
from support.protocols import ApiClientFactory

OPERATIONS = {
    ("/api-tokens", "get"): {"200", "400", "401", "403"},
    ("/api-tokens", "post"): {"200", "400", "401", "403", "413"},
    ("/api-tokens/{id}", "get"): {"200", "401", "403", "404"},
    ("/api-tokens/{id}", "post"): {"200", "400", "401", "403", "404", "413"},
    ("/api-tokens/{id}", "delete"): {"204", "401", "403", "404"},
    ("/api-tokens/{id}/rotate", "post"): {"200", "400", "401", "403", "404"},
}
ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}


@pytest.fixture
def document(server: InProcessServer, api: ApiClientFactory) -> dict[str, Any]:
    response = api(server).get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def _operation(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    operation: dict[str, Any] = document["paths"][path][method]
    return operation


def _scheme_name(document: dict[str, Any]) -> str:
    schemes = document["components"]["securitySchemes"]
    names = [
        name
        for name, scheme in schemes.items()
        if scheme == scheme | {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    ]
    assert len(names) == 1, schemes
    return names[0]


def test_document_is_openapi_3(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"]


def test_all_six_operations_are_described(document: dict[str, Any]) -> None:
    for path, method in OPERATIONS:
        operation = _operation(document, path, method)
        assert operation["summary"]
        assert operation["operationId"]


def test_every_operation_requires_the_api_key_scheme(document: dict[str, Any]) -> None:
    scheme = _scheme_name(document)
    for path, method in OPERATIONS:
        security = _operation(document, path, method)["security"]
        assert {scheme: []} in security, (path, method, security)


def test_every_operation_lists_its_error_responses(document: dict[str, Any]) -> None:
    for (path, method), codes in OPERATIONS.items():
        responses = _operation(document, path, method)["responses"]
        assert codes <= set(responses), (path, method, sorted(responses))
        assert "422" not in responses
        for code in codes - {"200", "204"}:
            schema = responses[code]["content"]["application/json"]["schema"]
            assert schema == ERROR_BODY, (path, method, code)


def test_error_body_requires_a_message(document: dict[str, Any]) -> None:
    error_body = document["components"]["schemas"]["ErrorBody"]
    assert error_body["required"] == ["message"]
    assert error_body["properties"]["message"]["type"] == "string"


def test_token_responses_use_the_api_token_schema(document: dict[str, Any]) -> None:
    for path, method in OPERATIONS:
        if method == "delete":
            continue
        schema = _operation(document, path, method)["responses"]["200"]["content"][
            "application/json"
        ]["schema"]
        expected = "ListResp" if (path, method) == ("/api-tokens", "get") else "APIToken"
        assert schema == {"$ref": f"#/components/schemas/{expected}"}


def test_api_token_schema_has_the_contract_fields(document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["APIToken"]
    assert set(schema["properties"]) >= TOKEN_FIELDS | {"value"}
    assert set(schema["required"]) >= {"id", "name", "permissions", "createdAt"}


def test_list_response_schema(document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["ListResp"]
    assert set(schema["properties"]) == {"results", "next"}
    assert schema["required"] == ["results"]


def test_create_and_update_require_a_modify_body(document: dict[str, Any]) -> None:
    for path in ("/api-tokens", "/api-tokens/{id}"):
        request = _operation(document, path, "post")["requestBody"]
        assert request["required"] is True
        schema = request["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ModifyAPIToken"}


def test_modify_body_schema_refuses_unknown_fields(document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["ModifyAPIToken"]
    assert set(schema["required"]) == {"name", "permissions"}
    assert {"name", "permissions", "allowedCIDRBlocks"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_parameters_are_described(document: dict[str, Any]) -> None:
    def names(path: str, method: str) -> set[tuple[str, str]]:
        parameters = _operation(document, path, method).get("parameters", [])
        return {(parameter["name"], parameter["in"]) for parameter in parameters}

    assert {("limit", "query"), ("cursor", "query")} <= names("/api-tokens", "get")
    for path, method in OPERATIONS:
        if "{id}" in path:
            assert ("id", "path") in names(path, method)
    assert ("gracePeriodSeconds", "query") in names("/api-tokens/{id}/rotate", "post")


def test_operations_carry_the_upstream_tag(document: dict[str, Any]) -> None:
    for path, method in OPERATIONS:
        assert "api token" in _operation(document, path, method)["tags"]


def test_docs_page_renders_the_document(server: InProcessServer, api: ApiClientFactory) -> None:
    response = api(server).get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "docs/init.js" in response.text
    assert "openapi.json" in api(server).get("/docs/init.js").text


def test_document_needs_no_api_key(server: InProcessServer, api: ApiClientFactory) -> None:
    first = api(server).get("/openapi.json")
    assert first.status_code == 200
    again = api(server).get("/openapi.json")  # built once, then served as built
    assert (again.status_code, again.json()) == (200, first.json())


def test_healthz_is_not_behind_the_api_key(document: dict[str, Any]) -> None:
    assert "security" not in document["paths"]["/healthz"]["get"]
