"""Exceptions to responses, in one table. Every error body is ``{"message": ..., "code": ...}``."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match, Mount

from apitokens.domain import errors
from apitokens.domain.text import printable
from apitokens.domain.values import redact
from apitokens.http.render import json_response

log = logging.getLogger("apitokens.http")

STATUS: dict[type[errors.DomainError], int] = {
    errors.ValidationFailed: 400,
    errors.InvalidCredentials: 401,
    errors.PermissionDenied: 403,
    errors.NotFound: 404,
    errors.TooManyFailures: 429,
    errors.StorageUnavailable: 503,
}

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The error body. What the caller sent may be quoted in ``message``: values are
    redacted, and control characters, bidi controls and lone surrogates are escaped, so
    that no input can make the answer unencodable (a 500) or drive a terminal."""
    return json_response(
        {"message": _shown(message), "code": HTTP_CODES.get(status, "error")}, status, headers
    )


@functools.lru_cache(maxsize=1024)
def _shown(message: str) -> str:
    # Cached (bounded): most refusals repeat one of a few messages (every refused value
    # gets the same 401), and the two passes over the text cost more than the lookup.
    return printable(redact(message))


async def _domain_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, errors.DomainError)
    status = next(STATUS[cls] for cls in type(error).__mro__ if cls in STATUS)
    headers: dict[str, str] = {}
    if isinstance(error, errors.TooManyFailures):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, errors.StorageUnavailable):
        headers["Retry-After"] = "1"
        log.warning("database unavailable", extra={"error": repr(error.__cause__)[:300]})
    if status == 401:
        headers["WWW-Authenticate"] = 'APIKey header="X-API-Key"'
    return error_response(status, error.message, headers)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    message = error.detail if isinstance(error.detail, str) else "request refused"
    headers = dict(error.headers or {})
    if error.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request, headers.get("Allow", "")))
        message = f"{request.method} is not allowed here; allowed: {headers['Allow']}"
    if error.status_code == 404 and message == "Not Found":
        message = f"no route {request.url.path}"  # values in it are redacted
    if error.status_code == 400 and message == "There was an error parsing the body":
        message = "malformed JSON: not UTF-8, or nested too deeply"  # FastAPI's catch-all
    return error_response(error.status_code, message, headers)


def allowed_methods(request: Request, fallback: str = "") -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    allowed = [
        method
        for method in _METHODS
        if any(
            not isinstance(route, Mount)
            and route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]
    return allowed or [part.strip() for part in fallback.split(",") if part.strip()]


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    return error_response(400, describe(error.errors()))


async def _unexpected(request: Request, error: Exception) -> Response:
    log.error("unexpected error", extra={"error_type": type(error).__name__})
    return error_response(500, "internal error; the request had no effect")


def describe(problems: Sequence[Any]) -> str:
    """One readable sentence per validation problem, naming the field."""
    return "; ".join(_describe_one(problem) for problem in problems[:5])


def _describe_one(problem: Any) -> str:
    location = [str(part) for part in problem.get("loc", ()) if part not in ("body",)]
    kind = problem.get("type", "")
    source = problem.get("loc", ("body",))[0]
    field = ".".join(location[1:] if source in ("query", "path", "header") else location)
    if kind == "json_invalid":
        return f"malformed JSON: {problem.get('ctx', {}).get('error', 'cannot be parsed')}"
    if kind == "missing" and not field:
        return "a JSON request body is required"
    if kind == "missing":
        return f"{field}: is required"
    if kind == "extra_forbidden":
        return f"{field}: unknown field{_suggest(field)}"
    if isinstance(problem.get("input"), bytes) and not field:
        return "the request body must be JSON, sent with Content-Type: application/json"
    if kind in ("model_attributes_type", "dict_type", "model_type") and not field:
        return "the request body must be a JSON object"
    message = str(problem.get("msg", "is invalid")).removeprefix("Value error, ")
    return f"{field}: {message[0].lower()}{message[1:]}" if field else message


_FIELDS = ("name", "permissions", "servicePermissions", "allowedCIDRBlocks", "expiresAt")


def _suggest(field: str) -> str:
    for known in _FIELDS:
        if known.lower() == field.split(".")[-1].lower():
            return f" (did you mean {known}?)"
    return f" (accepted fields: {', '.join(_FIELDS)})"


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.DomainError, _domain_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
