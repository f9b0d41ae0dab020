"""Error codes a client may see (errors[].extensions.code), and the error that carries one."""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    """Every code the gateway answers with; the contract's first, then the ones it added."""

    # contract §1 and §5
    INVALID_USCC = "INVALID_USCC"
    INVALID_ID_NUMBER = "INVALID_ID_NUMBER"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    AUTHORIZATION_REQUIRED = "AUTHORIZATION_REQUIRED"
    BATCH_TOO_LARGE = "BATCH_TOO_LARGE"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    RATE_LIMITED = "RATE_LIMITED"
    SOURCE_UNAVAILABLE = "SOURCE_UNAVAILABLE"
    # contract §10 (2026-11-30)
    NOT_FOUND = "NOT_FOUND"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    # The gateway's own additions (docs/operations.md, docs/privacy.md).
    INVALID_CURSOR = "INVALID_CURSOR"
    AUDIT_UNAVAILABLE = "AUDIT_UNAVAILABLE"
    REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
    OVERLOADED = "OVERLOADED"
    # A trusted document's id the gateway does not know (docs/integrators.md); Apollo's name
    # for it, which its clients and routers already recognise.
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"


class GatewayError(Exception):
    """An error a client may see: a contract error code and a plain message, nothing internal."""

    def __init__(self, code: ErrorCode, message: str, **extensions: str) -> None:
        super().__init__(message)
        self.code = code
        # graphql-core copies an original error's `extensions` dict into the response.
        self.extensions: dict[str, str] = {"code": code.value, **extensions}
