"""The GraphQL schema of the gateway, built from the contract's types."""

from __future__ import annotations

import strawberry
from strawberry.extensions import MaskErrors

from gateway.errors import should_mask
from gateway.extensions import ReportFailedSources
from schema.query import Query


def build_schema() -> strawberry.Schema:
    """Used by the app and by `credit-gateway schema`; extensions hold cross-cutting concerns."""
    return strawberry.Schema(
        query=Query,
        extensions=[
            ReportFailedSources,
            # Anything but a coded GatewayError reaches the client as a generic message.
            lambda: MaskErrors(should_mask_error=should_mask, error_message="Internal error."),
        ],
    )
