"""Which errors reach a client as they are, and which are masked as a generic message."""

from __future__ import annotations

from graphql import GraphQLError

from core.errors import GatewayError


def should_mask(error: GraphQLError) -> bool:
    """Whether an error is a fault of ours; used by MaskErrors and to decide what is logged."""
    original = error.original_error
    if original is None or isinstance(original, GatewayError):
        # graphql-core's syntax and validation errors, and the contract's coded answers.
        return False
    # Variable coercion ("Int cannot represent non-integer value") wraps graphql-core's
    # own error about the value sent; like syntax and validation errors it describes the
    # request, is raised before any resolver runs and so has no path. An error with a
    # path was raised while resolving; one without a path and with any other original
    # error was raised by our code around the execution (an extension): both are faults.
    return error.path is not None or not isinstance(original, GraphQLError)
