"""The GraphQL schema of the gateway, built from the contract's types."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors, MaxTokensLimiter
from strawberry.types import ExecutionContext

from schema.errors import should_mask
from schema.extensions import MaskIdsInErrors, ReportFailedSources
from schema.query import Query
from schema.query_cache import CachedParse, ParsedQueries, SmallDocumentValidationCache
from schema.query_limits import DocumentLimits, QueryLimits, validation_rules
from schema.text import TextArguments


class GatewaySchema(strawberry.Schema):
    """Strawberry's schema, logging only the errors MaskErrors hides: faults of ours."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Called by strawberry for every error, before MaskErrors; logs them at ERROR."""
        # Coded answers (FORBIDDEN and the like) and errors describing the request (syntax,
        # validation, variable values) are the caller's to fix, not the operator's.
        super().process_errors([e for e in errors if should_mask(e)], execution_context)


def build_schema(limits: DocumentLimits | None = None) -> strawberry.Schema:
    """Used by the app and by `credit-gateway schema`; extensions hold cross-cutting concerns."""
    limits = limits or DocumentLimits()
    # Built once here, not per request: the validation cache keys on the rule classes.
    rules = validation_rules(limits)
    parsed = ParsedQueries()
    return GatewaySchema(
        query=Query,
        extensions=[
            ReportFailedSources,
            # Faults of ours (schema/errors.py) reach the client as a generic message.
            lambda: MaskErrors(should_mask_error=should_mask, error_message="Internal error."),
            MaskIdsInErrors,
            # QUERY_TOO_COMPLEX before anything runs; repeated queries skip parse and validation.
            lambda: QueryLimits(rules),
            lambda: MaxTokensLimiter(limits.max_tokens),
            lambda: CachedParse(parsed),
            SmallDocumentValidationCache,
            # INVALID_ARGUMENT for text that is not plain, bounded text, before any resolver.
            TextArguments,
        ],
    )
