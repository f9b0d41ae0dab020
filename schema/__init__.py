"""The GraphQL schema of the gateway, built from the contract's types."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import strawberry
from graphql import (
    GraphQLError,
    is_specified_directive,
    is_specified_scalar_type,
    parse,
    print_directive,
    print_type,
)
from graphql.language import DirectiveDefinitionNode, TypeDefinitionNode
from strawberry.extensions import MaskErrors, MaxTokensLimiter, SchemaExtension
from strawberry.types import ExecutionContext

from core.roles import Role
from schema.bulk import BulkMutations
from schema.errors import should_mask
from schema.extensions import MaskIdsInErrors, ReportFailedSources
from schema.federation import FEDERATION_VERSION, FederatedQuery
from schema.introspection import IntrospectionByRole, NoIntrospectionRule
from schema.query_cache import CachedParse, ParsedQueries, SmallDocumentValidationCache
from schema.query_limits import DocumentLimits, QueryLimits, validation_rules
from schema.text import TextArguments
from schema.watch import Subscription, WatchMutations


class GatewaySchema(strawberry.federation.Schema):
    """Strawberry's federation schema, logging only the errors MaskErrors hides: faults of ours."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Called by strawberry for every error, before MaskErrors; logs them at ERROR."""
        # Coded answers (FORBIDDEN and the like) and errors describing the request (syntax,
        # validation, variable values) are the caller's to fix, not the operator's.
        super().process_errors([e for e in errors if should_mask(e)], execution_context)

    def as_str(self) -> str:
        """Used by `credit-gateway schema`: the subgraph SDL and the federation definitions."""
        # The subgraph SDL (what `_service { sdl }` answers) applies @link and @key without
        # defining them, which routers know; the printed schema defines them as well (as
        # introspection shows them), so any GraphQL tool can build it on its own.
        sdl = super().as_str()
        nodes = parse(sdl).definitions
        defined = {n.name.value for n in nodes if isinstance(n, TypeDefinitionNode)}
        directives = {n.name.value for n in nodes if isinstance(n, DirectiveDefinitionNode)}
        schema = self._schema
        definitions = [
            print_directive(d)
            for d in schema.directives
            if not is_specified_directive(d) and d.name not in directives
        ] + [
            print_type(t)
            for name, t in sorted(schema.type_map.items())
            if not name.startswith("__") and not is_specified_scalar_type(t) and name not in defined
        ]
        if not definitions:
            return sdl
        note = "# Apollo Federation's definitions, which a subgraph's SDL leaves to the router"
        return "\n\n".join([sdl, note + "\n" + definitions[0], *definitions[1:]])


@strawberry.type
class Mutation(BulkMutations, WatchMutations):
    """The Mutation root: bulk checks and watchlists (contract §8–§9)."""


def build_schema(
    limits: DocumentLimits | None = None,
    introspection_roles: Collection[Role] = tuple(Role),
    *,
    extensions: Sequence[Callable[[], SchemaExtension]] = (),
) -> strawberry.Schema:
    """Used by the app and by `credit-gateway schema`; extensions hold cross-cutting concerns.

    `extensions`: the gateway's own (its operation metrics, logs and spans), outermost, so
    they time the whole operation and see its final errors.
    """
    limits = limits or DocumentLimits()
    # Built once here, not per request: the validation cache keys on the rule classes.
    rules = validation_rules(limits)
    parsed = ParsedQueries()
    by_role: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = []
    if set(Role) - set(introspection_roles):
        # After QueryLimits, which sets `rules`: roles that may not introspect get these.
        refusing = (*rules, NoIntrospectionRule)
        allowed = frozenset(introspection_roles)
        by_role.append(lambda: IntrospectionByRole(allowed, refusing))
    return GatewaySchema(
        query=FederatedQuery,
        mutation=Mutation,
        subscription=Subscription,
        federation_version=FEDERATION_VERSION,
        extensions=[
            *extensions,
            ReportFailedSources,
            # Faults of ours (schema/errors.py) reach the client as a generic message.
            lambda: MaskErrors(should_mask_error=should_mask, error_message="Internal error."),
            MaskIdsInErrors,
            # QUERY_TOO_COMPLEX before anything runs; repeated queries skip parse and validation.
            lambda: QueryLimits(rules),
            *by_role,
            lambda: MaxTokensLimiter(limits.max_tokens),
            lambda: CachedParse(parsed),
            SmallDocumentValidationCache,
            # INVALID_ARGUMENT for text that is not plain, bounded text, before any resolver.
            TextArguments,
        ],
    )
