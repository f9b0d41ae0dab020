"""The committed SDL is the printed schema, and it keeps the served part of the public contract."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

import pytest
from graphql import (
    DefinitionNode,
    DocumentNode,
    EnumTypeDefinitionNode,
    EnumTypeExtensionNode,
    EnumValueDefinitionNode,
    FieldDefinitionNode,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InputObjectTypeDefinitionNode,
    InputObjectTypeExtensionNode,
    InputValueDefinitionNode,
    InterfaceTypeDefinitionNode,
    InterfaceTypeExtensionNode,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    TypeDefinitionNode,
    TypeExtensionNode,
    build_schema,
    parse,
    print_ast,
)

from schema import build_schema as build_gateway_schema
from schema.compatibility import InvalidContract, breaking_changes, load_contract

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT / "schema" / "schema.graphql"
# The repository's copy of the public contract; the tests never read ../shared for it.
CONTRACT_COPY = ROOT / "docs" / "contract"
CONTRACT = CONTRACT_COPY / "schema.graphql"
# Where the shared, read-only contract sits beside a working copy (absent in a fresh clone).
SHARED_CONTRACT = ROOT.parent / "shared" / "contract"
CONTRACT_FILES = ("README.md", "schema.graphql")

# Parts of the contract not served yet: types, "Type.field" and "Enum.VALUE", one by one.
# Everything here was added to the contract on 2026-11-30 (README §7–§11) and is built by
# later issues; an entry leaves the list when its part is served (test_allow_list_only_shrinks).
NOT_YET_SERVED: frozenset[str] = frozenset()


@pytest.fixture(scope="module")
def printed() -> str:
    return build_gateway_schema().as_str()


@pytest.fixture(scope="module")
def served(printed: str) -> GraphQLSchema:
    return build_schema(printed)


@pytest.fixture(scope="module")
def contract_sdl() -> str:
    return CONTRACT.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def contract(contract_sdl: str) -> GraphQLSchema:
    return load_contract(contract_sdl)


@pytest.fixture(scope="module")
def served_part(contract_sdl: str) -> GraphQLSchema:
    """The contract without NOT_YET_SERVED: what the gateway must keep today."""
    try:
        return load_contract(_without(contract_sdl, NOT_YET_SERVED))
    except InvalidContract as exc:
        pytest.fail(f"without NOT_YET_SERVED the contract is no schema (list its users too): {exc}")


def test_snapshot_is_the_printed_schema(printed: str) -> None:
    committed = SNAPSHOT.read_text(encoding="utf-8")
    assert committed.strip() == printed.strip(), (
        "schema/schema.graphql is out of date: run `credit-gateway schema > schema/schema.graphql`"
    )


def test_contract_extensions_are_part_of_the_built_contract(contract: GraphQLSchema) -> None:
    # The contract adds to Query with `extend type Query` in the same document.
    assert contract.query_type is not None
    assert {"subject", "auditLog", "bulkCheck", "statistics"} <= set(contract.query_type.fields)
    assert contract.mutation_type is not None and contract.mutation_type.name == "Mutation"
    assert contract.subscription_type is not None


def test_served_schema_keeps_the_contract(
    served_part: GraphQLSchema, served: GraphQLSchema
) -> None:
    assert [str(change) for change in breaking_changes(served_part, served)] == []


def test_allow_list_only_shrinks(contract: GraphQLSchema, served: GraphQLSchema) -> None:
    unknown = sorted(part for part in NOT_YET_SERVED if not _exists(contract, part))
    assert unknown == [], "NOT_YET_SERVED names parts the contract does not have"
    # A contract part absent from the served schema is itself a breaking change (TYPE_REMOVED,
    # FIELD_REMOVED, VALUE_REMOVED_FROM_ENUM). A part served now must leave the list; a part
    # served only in part is listed by its missing fields instead.
    served_now = sorted(part for part in NOT_YET_SERVED if _exists(served, part))
    assert served_now == [], "served now: remove these from NOT_YET_SERVED"


def test_unserved_parts_are_what_the_full_contract_misses(
    contract: GraphQLSchema, served: GraphQLSchema
) -> None:
    # Without the allow-list the check reports one missing part per entry, no more, no less
    # (an entry inside another entry, such as "BulkCheck.id" beside "BulkCheck", fails here).
    lines = [str(change) for change in breaking_changes(contract, served)]
    assert len(lines) == len(NOT_YET_SERVED), lines
    missing = ("TYPE_REMOVED:", "FIELD_REMOVED:", "VALUE_REMOVED_FROM_ENUM:")
    assert [line for line in lines if not line.startswith(missing)] == []


def test_copy_matches_the_shared_contract() -> None:
    if not SHARED_CONTRACT.is_dir():
        reason = f"no shared contract beside the repository at {SHARED_CONTRACT}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must check docs/contract/ against it")
        pytest.skip(reason)
    for name in CONTRACT_FILES:
        assert (CONTRACT_COPY / name).read_bytes() == (SHARED_CONTRACT / name).read_bytes(), (
            f"docs/contract/{name} differs from {SHARED_CONTRACT / name}: copy it again"
        )


# Edits of the served SDL that break the contract: (old, new, change kind, what it names).
BREAKING_EDITS = {
    "field removed": (
        "  incentives: [AppliedMeasure!]!\n",
        "",
        "FIELD_REMOVED",
        "JointPunishment.incentives",
    ),
    "output made nullable": (
        "  supervision: Supervision!\n",
        "  supervision: Supervision\n",
        "FIELD_CHANGED_KIND",
        "Subject.supervision",
    ),
    "argument made required": (
        "  measures(scenario: Scenario)",
        "  measures(scenario: Scenario!)",
        "ARG_CHANGED_KIND",
        "Query.measures(scenario:)",
    ),
    "argument type changed": (
        "subject(uscc: String!)",
        "subject(uscc: ID!)",
        "ARG_CHANGED_KIND",
        "Query.subject(uscc:)",
    ),
    "argument removed": (
        "authorizationRef: String): Person",
        "): Person",
        "ARG_REMOVED",
        "Query.person(authorizationRef:)",
    ),
    "required argument added": (
        "subjects(usccs: [String!]!)",
        "subjects(usccs: [String!]!, region: String!)",
        "REQUIRED_ARG_ADDED",
        "Query.subjects(region:)",
    ),
    "argument default changed": (
        "searchSubjects(name: String!, first: Int = 20,",
        "searchSubjects(name: String!, first: Int = 10,",
        "ARG_DEFAULT_VALUE_CHANGE",
        "Query.searchSubjects(first:)",
    ),
    "argument default removed": (
        "auditLog(first: Int = 50,",
        "auditLog(first: Int,",
        "ARG_DEFAULT_VALUE_CHANGE",
        "Query.auditLog(first:)",
    ),
    "enum value removed": (
        "  PUNISHED\n  INCOMPLETE\n",
        "  PUNISHED\n",
        "VALUE_REMOVED_FROM_ENUM",
        "JointStatus.INCOMPLETE",
    ),
}

# Edits the contract allows ("add freely"): none of them may be reported.
COMPATIBLE_EDITS = {
    "enum value added": ("  PUNISHED\n  INCOMPLETE\n", "  PUNISHED\n  UNKNOWN\n  INCOMPLETE\n"),
    "optional argument added": (
        "subjects(usccs: [String!]!)",
        "subjects(usccs: [String!]!, x: Int)",
    ),
    "argument with a default added": (
        "subject(uscc: String!)",
        "subject(uscc: String!, x: Int! = 1)",
    ),
    "field added": ("  supervision: Supervision!\n", "  supervision: Supervision!\n  x: Int\n"),
    "output made non-null": ("  registration: Registration\n", "  registration: Registration!\n"),
    "argument made optional": ("subject(uscc: String!)", "subject(uscc: String)"),
}


@pytest.mark.parametrize("edit", BREAKING_EDITS.values(), ids=BREAKING_EDITS.keys())
def test_check_reports_a_broken_contract(
    served_part: GraphQLSchema, printed: str, edit: tuple[str, str, str, str]
) -> None:
    old, new, kind, named = edit
    changes = breaking_changes(served_part, build_schema(_edited(printed, old, new)))
    assert [change.kind.name for change in changes] == [kind], [str(c) for c in changes]
    assert named in str(changes[0])


@pytest.mark.parametrize("edit", COMPATIBLE_EDITS.values(), ids=COMPATIBLE_EDITS.keys())
def test_check_allows_additions(
    served_part: GraphQLSchema, printed: str, edit: tuple[str, str]
) -> None:
    old, new = edit
    assert breaking_changes(served_part, build_schema(_edited(printed, old, new))) == []


def test_check_reports_contract_parts_the_server_lacks(
    contract_sdl: str, served: GraphQLSchema
) -> None:
    extended = _without(contract_sdl, NOT_YET_SERVED) + (
        "\ntype CreditReport { score: Int }\nextend type Query { creditReport: CreditReport }\n"
    )
    lines = sorted(str(change) for change in breaking_changes(extended, served))
    assert len(lines) == 2, lines
    assert lines[0].startswith("FIELD_REMOVED:") and "Query.creditReport" in lines[0]
    assert lines[1].startswith("TYPE_REMOVED:") and "CreditReport" in lines[1]


def _edited(sdl: str, old: str, new: str) -> str:
    # Exactly one place, so a changed snapshot fails here instead of testing nothing.
    assert sdl.count(old) == 1, f"{old!r} is not in the printed schema exactly once"
    return sdl.replace(old, new)


def _without(sdl: str, parts: Iterable[str]) -> str:
    """The SDL without the named types, fields and enum values (and extensions left empty)."""
    leave_out = set(parts)
    kept: list[DefinitionNode] = []
    for node in parse(sdl).definitions:
        if isinstance(node, TypeDefinitionNode | TypeExtensionNode):
            if node.name.value in leave_out:
                continue
            node = _without_members(node, leave_out)
            if isinstance(node, TypeExtensionNode) and not _members(node):
                continue
        kept.append(node)
    return print_ast(DocumentNode(definitions=tuple(kept)))


def _without_members(
    node: TypeDefinitionNode | TypeExtensionNode, leave_out: set[str]
) -> TypeDefinitionNode | TypeExtensionNode:
    name = node.name.value
    if isinstance(node, EnumTypeDefinitionNode | EnumTypeExtensionNode):
        return dataclasses.replace(node, values=_kept(name, node.values, leave_out))
    if isinstance(node, InputObjectTypeDefinitionNode | InputObjectTypeExtensionNode):
        return dataclasses.replace(node, fields=_kept(name, node.fields, leave_out))
    if isinstance(
        node,
        ObjectTypeDefinitionNode
        | ObjectTypeExtensionNode
        | InterfaceTypeDefinitionNode
        | InterfaceTypeExtensionNode,
    ):
        return dataclasses.replace(node, fields=_kept(name, node.fields, leave_out))
    return node


_Member = TypeVar("_Member", FieldDefinitionNode, InputValueDefinitionNode, EnumValueDefinitionNode)


def _kept(
    type_name: str, members: tuple[_Member, ...] | None, leave_out: set[str]
) -> tuple[_Member, ...]:
    return tuple(m for m in members or () if f"{type_name}.{m.name.value}" not in leave_out)


def _members(node: TypeDefinitionNode | TypeExtensionNode) -> tuple[object, ...]:
    return tuple(getattr(node, "fields", None) or getattr(node, "values", None) or ())


def _exists(schema: GraphQLSchema, part: str) -> bool:
    type_name, _, member = part.partition(".")
    named = schema.type_map.get(type_name)
    if named is None or not member:
        return named is not None
    if isinstance(named, GraphQLEnumType):
        return member in named.values
    if isinstance(named, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
        return member in named.fields
    return False
