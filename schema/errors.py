"""Which errors reach a client as they are, and which are masked as a generic message."""

from __future__ import annotations

from graphql import GraphQLError

from core.errors import GatewayError


def should_mask(error: GraphQLError) -> bool:
    """Mask every error raised by code, unless it is a GatewayError (used by MaskErrors)."""
    # Syntax and validation errors carry no original error: they describe the client's
    # own query and are safe to show.
    original = error.original_error
    return original is not None and not isinstance(original, GatewayError)
