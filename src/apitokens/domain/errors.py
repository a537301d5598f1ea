"""The few domain exceptions. The HTTP layer maps each class to a status code, once."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: ``message`` is safe to show to the caller; it never holds a secret."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationFailed(DomainError):
    code = "bad_request"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field


class InvalidCredentials(DomainError):
    """Missing, malformed, unknown, revoked or rotated-out key: all look the same outside.

    ``reason`` is for the log only and is never sent to the caller.
    """

    code = "unauthorized"

    def __init__(self, reason: str, message: str = "invalid or missing API key") -> None:
        super().__init__(message)
        self.reason = reason


class TokenExpired(InvalidCredentials):
    def __init__(self) -> None:
        super().__init__("expired", "the API key has expired")


class PermissionDenied(DomainError):
    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class TooManyFailures(DomainError):
    """429 with ``Retry-After``. Subclasses say what there was too much of."""

    code = "too_many_requests"
    what = "failed authentications from this address"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many {self.what}; retry in {retry_after} s")
        self.retry_after = retry_after


class TooManyRotations(TooManyFailures):
    what = "rotations of this API token"


class StorageUnavailable(DomainError):
    code = "unavailable"

    def __init__(self) -> None:
        super().__init__("the token database is unavailable; retry shortly")
