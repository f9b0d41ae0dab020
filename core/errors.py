"""Errors the contract names (errors[].extensions.code), and which errors get masked."""

from __future__ import annotations

from graphql import GraphQLError


class GatewayError(Exception):
    """An error a client may see: a contract error code and a plain message, nothing internal."""

    def __init__(self, code: str, message: str, **extensions: str) -> None:
        super().__init__(message)
        self.code = code
        # graphql-core copies an original error's `extensions` dict into the response.
        self.extensions: dict[str, str] = {"code": code, **extensions}


def should_mask(error: GraphQLError) -> bool:
    """Mask every error raised by code, unless it is a GatewayError (used by MaskErrors)."""
    # Syntax and validation errors carry no original error: they describe the client's
    # own query and are safe to show.
    original = error.original_error
    return original is not None and not isinstance(original, GatewayError)
