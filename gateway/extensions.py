"""Schema extensions: cross-cutting concerns kept out of the resolvers."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension


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
                    extensions={"code": "SOURCE_UNAVAILABLE", "department": department.value},
                )
            )
        result.errors = errors
