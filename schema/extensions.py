"""Schema extensions: cross-cutting concerns kept out of the resolvers."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from core.errors import ErrorCode
from core.masking import mask_ids
from core.roles import Role


class ReportFailedSources(SchemaExtension):
    """Adds one SOURCE_UNAVAILABLE error per department that failed during the request."""

    def on_operation(self) -> Iterator[None]:
        """Runs around each operation; failures are collected by the request's loaders."""
        yield
        context = self.execution_context.context
        result = self.execution_context.result
        loaders = getattr(context, "loaders", None)
        if result is None or loaders is None or not loaders.failures:
            return
        errors = list(result.errors or [])
        for department, failure in sorted(loaders.failures.items()):
            errors.append(
                GraphQLError(
                    f"{department.value} could not answer ({failure.kind.value.lower()})",
                    extensions={
                        "code": ErrorCode.SOURCE_UNAVAILABLE.value,
                        "department": department.value,
                    },
                )
            )
        result.errors = errors


class MaskIdsInErrors(SchemaExtension):
    """Masks ID numbers in error messages for every role but regulator (contract §1)."""

    def on_operation(self) -> Iterator[None]:
        """Runs around parsing, validation and execution, so a message quoting input is caught."""
        yield
        result = self.execution_context.result
        caller = getattr(self.execution_context.context, "caller", None)
        if result is None or not result.errors or getattr(caller, "role", None) is Role.REGULATOR:
            return
        # e.g. "String cannot represent a non string value: 610802…" echoes the input.
        result.errors = [_masked_error(e) for e in result.errors]


def _masked_error(error: GraphQLError) -> GraphQLError:
    message = mask_ids(error.message, decode=False)
    if message == error.message:
        return error
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions=error.extensions,
    )
