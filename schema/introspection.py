"""Introspection per role ([http] introspection_roles): who may read the schema by querying it."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

from graphql import FieldNode, GraphQLError, ValidationRule, get_named_type, is_introspection_type
from graphql.validation import ASTValidationRule
from strawberry.extensions import SchemaExtension

from core.errors import ErrorCode, GatewayError
from core.roles import ANONYMOUS, Caller, Role


class NoIntrospectionRule(ValidationRule):
    """Refuses `__schema`, `__type` and federation's `_service { sdl }` (FORBIDDEN)."""

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        """Called by graphql-core's validation for every field of the document."""
        name = node.name.value
        context = self.context
        if name in ("__schema", "__type"):
            named = get_named_type(context.get_type())
            refused = named is not None and is_introspection_type(named)
        else:
            # `_service { sdl }` prints the whole schema, as introspection would: a router
            # composing the supergraph reads it with a key of a role that may introspect.
            parent = context.get_parent_type()
            refused = name == "_service" and parent is context.schema.query_type
        if refused:
            message = f"{name} (introspection) is not allowed for this caller's role"
            context.report_error(
                GraphQLError(
                    message, node, original_error=GatewayError(ErrorCode.FORBIDDEN, message)
                )
            )


class IntrospectionByRole(SchemaExtension):
    """Validates the queries of roles that may not introspect with NoIntrospectionRule too."""

    def __init__(
        self, allowed: Collection[Role], refusing: tuple[type[ASTValidationRule], ...]
    ) -> None:
        self.allowed = allowed
        self.refusing = refusing

    def on_operation(self) -> Iterator[None]:
        """Runs after QueryLimits has set the rules (extensions enter in the schema's order)."""
        caller: Caller = getattr(self.execution_context.context, "caller", ANONYMOUS)
        if caller.role not in self.allowed:
            # One of two tuples built once per schema (build_schema), never a new one per
            # request: the validation cache keys on the tuple, so a document validated for
            # a role that may introspect is never taken as valid for one that may not.
            self.execution_context.validation_rules = self.refusing
        yield
