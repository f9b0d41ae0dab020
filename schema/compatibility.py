"""Whether a served schema keeps a contract: what an existing client relies on is still there.

Only graphql-core and the standard library: partners' tooling and the tests can use this
without the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    BreakingChangeType,
    DangerousChangeType,
    GraphQLError,
    GraphQLSchema,
    build_ast_schema,
    find_breaking_changes,
    find_dangerous_changes,
    parse,
    validate_schema,
)
from graphql.validation.validate import validate_sdl

# graphql-core calls these "dangerous"; under the contract ("add freely, never rename, remove
# or reinterpret") they break it, because a client that omits the argument or input field
# would silently get a different answer: the old default is part of what the name means.
# The other dangerous kinds are additions the contract allows, and clients must expect them:
#   VALUE_ADDED_TO_ENUM, TYPE_ADDED_TO_UNION: a new value or member appears in answers;
#   OPTIONAL_ARG_ADDED, OPTIONAL_INPUT_FIELD_ADDED: existing requests mean what they meant;
#   IMPLEMENTED_INTERFACE_ADDED: a type gains an interface, nothing it had goes away.
REINTERPRETING = frozenset(
    {
        DangerousChangeType.ARG_DEFAULT_VALUE_CHANGE,
        DangerousChangeType.INPUT_FIELD_DEFAULT_VALUE_CHANGE,
    }
)


class InvalidContract(ValueError):
    """Raised by `load_contract` when the text is not a valid GraphQL schema (SDL)."""


@dataclass(frozen=True)
class ContractChange:
    """One way the served schema breaks the contract; one line of `schema --check`."""

    kind: BreakingChangeType | DangerousChangeType
    description: str

    def __str__(self) -> str:
        """Used for the one line per change that `schema --check` and the tests print."""
        return f"{self.kind.name}: {' '.join(self.description.split())}"


def load_contract(sdl: str) -> GraphQLSchema:
    """Used on a contract's text before comparing; InvalidContract names what is wrong."""
    try:
        document = parse(sdl)
    except GraphQLError as exc:
        raise InvalidContract(_one_line(exc)) from None
    problems = validate_sdl(document)
    if problems:
        raise InvalidContract("; ".join(_one_line(error) for error in problems))
    # The document may extend its own types (`extend type Query` in the public contract):
    # build_ast_schema applies the extensions of the same document.
    built = build_ast_schema(document, assume_valid_sdl=True)
    problems = validate_schema(built)
    if problems:
        raise InvalidContract("; ".join(_one_line(error) for error in problems))
    return built


def breaking_changes(contract: str | GraphQLSchema, served: GraphQLSchema) -> list[ContractChange]:
    """Used by `schema --check` and the schema tests: empty when `served` keeps `contract`."""
    old = load_contract(contract) if isinstance(contract, str) else contract
    breaking = [ContractChange(c.type, c.description) for c in find_breaking_changes(old, served)]
    reinterpreting = [
        ContractChange(c.type, c.description)
        for c in find_dangerous_changes(old, served)
        if c.type in REINTERPRETING
    ]
    return breaking + reinterpreting


def _one_line(error: GraphQLError) -> str:
    where = ", ".join(f"line {loc.line} column {loc.column}" for loc in error.locations or ())
    return f"{error.message} ({where})" if where else error.message
