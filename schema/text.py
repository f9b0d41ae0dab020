"""Text the caller sends, checked at the boundary: well-formed, no control characters, bounded."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    InlineFragmentNode,
    ListValueNode,
    Node,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableNode,
)
from strawberry.extensions import SchemaExtension

from core.errors import ErrorCode, GatewayError

# The longest text argument: codes and ID numbers have 18 characters, registered names
# rarely 60, cursors and authorization references a few dozen. A bound keeps a 1 MB
# "name" out of searches and out of the audit log, where authorizationRef is stored.
MAX_TEXT_CHARS = 256
# Unicode categories no argument may contain. No field takes more than one line of text
# today, so line breaks are refused with the other control characters (tab, NUL, DEL,
# C1); an unpaired surrogate ("\ud800" in JSON) is not text at all and cannot even be
# encoded as UTF-8; format characters (bidi overrides, zero-width) can make a logged
# value read differently from what was looked up.
_REFUSED = {
    "Cc": "a control character",
    "Cs": "an unpaired surrogate",
    "Cf": "an invisible format character",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}


def text_problem(text: str) -> str | None:
    """What makes a string unacceptable as an argument, or None; used for every string sent."""
    if len(text) > MAX_TEXT_CHARS:
        return f"is longer than {MAX_TEXT_CHARS} characters"
    # Fast path: isprintable() is False for every refused category (and for a few allowed
    # ones: spaces other than U+0020, private use), so most strings need no closer look.
    if text.isprintable():
        return None
    for position, char in enumerate(text, 1):
        kind = _REFUSED.get(unicodedata.category(char))
        if kind is not None:
            return f"contains {kind} (U+{ord(char):04X}) at character {position}"
    return None


class TextArguments(SchemaExtension):
    """Refuses a request whose string arguments or variables are not plain, bounded text."""

    def on_execute(self) -> Iterator[None]:
        """Runs after validation and before any resolver: a result set here skips execution."""
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            errors = _check(document, context.variables or {})
            if errors:
                # One INVALID_ARGUMENT per offending argument; no resolver runs, so nothing
                # (the audit log included) ever sees the text.
                context.result = ExecutionResult(data=None, errors=errors)
        yield


def _check(document: DocumentNode, variables: dict[str, Any]) -> list[GraphQLError]:
    errors = []
    arguments = list(_arguments(document))
    for name, owner, value in arguments:
        found = _literal_problem(value)
        if found is not None:
            at, leaf, problem = found
            errors.append(_invalid(f"argument {name}{at} of {owner}", problem, leaf))
    # A variable is named after the first argument it is passed to; graphql-core ignores
    # variables the operations do not declare, and so does this check.
    used: dict[str, str] = {}
    for name, owner, value in arguments:
        for _, leaf in _leaves(value):
            if isinstance(leaf, VariableNode):
                used.setdefault(leaf.name.value, f" (argument {name} of {owner})")
    for operation in document.definitions:
        if not isinstance(operation, OperationDefinitionNode):
            continue
        for definition in operation.variable_definitions or ():
            variable = definition.variable.name.value
            if definition.default_value is not None:
                found = _literal_problem(definition.default_value)
                if found is not None:
                    at, leaf, problem = found
                    errors.append(_invalid(f"default value{at} of ${variable}", problem, leaf))
            if variable in variables:
                sent = _value_problem(variables[variable])
                if sent is not None:
                    at, problem = sent
                    where = f"variable ${variable}{at}{used.get(variable, '')}"
                    errors.append(_invalid(where, problem, definition))
    return errors


def _invalid(where: str, problem: str, node: Node) -> GraphQLError:
    # Says what is wrong and where, never the text itself: it may be an ID number.
    message = f"{where} {problem}"
    return GraphQLError(
        message, node, original_error=GatewayError(ErrorCode.INVALID_ARGUMENT, message)
    )


def _arguments(document: DocumentNode) -> Iterator[tuple[str, str, ValueNode]]:
    """Every argument of the document's fields and directives: name, owner and value."""
    for definition in document.definitions:
        if isinstance(definition, (OperationDefinitionNode, FragmentDefinitionNode)):
            yield from _directive_arguments(definition.directives)
            yield from _selection_arguments(definition.selection_set)


def _selection_arguments(
    selection_set: SelectionSetNode | None,
) -> Iterator[tuple[str, str, ValueNode]]:
    # Recursion as deep as the selections nest, which graphql-core's parser bounds (200).
    for selection in selection_set.selections if selection_set else ():
        yield from _directive_arguments(selection.directives)
        if isinstance(selection, FieldNode):
            for argument in selection.arguments or ():
                yield argument.name.value, selection.name.value, argument.value
            yield from _selection_arguments(selection.selection_set)
        elif isinstance(selection, InlineFragmentNode):
            yield from _selection_arguments(selection.selection_set)


def _directive_arguments(
    directives: Iterable[DirectiveNode] | None,
) -> Iterator[tuple[str, str, ValueNode]]:
    for directive in directives or ():
        for argument in directive.arguments or ():
            yield argument.name.value, f"@{directive.name.value}", argument.value


def _leaves(value: ValueNode) -> Iterator[tuple[str, ValueNode]]:
    """The leaves of a literal and where they sit ("[2]"); the parser bounds the nesting."""
    if isinstance(value, ListValueNode):
        for index, item in enumerate(value.values):
            for at, leaf in _leaves(item):
                yield f"[{index}]{at}", leaf
    elif isinstance(value, ObjectValueNode):
        for field in value.fields:
            for at, leaf in _leaves(field.value):
                yield f".{field.name.value}{at}", leaf
    else:
        yield "", value


def _literal_problem(value: ValueNode) -> tuple[str, ValueNode, str] | None:
    for at, leaf in _leaves(value):
        if isinstance(leaf, StringValueNode) and (problem := text_problem(leaf.value)):
            return at, leaf, problem
    return None


def _value_problem(value: object) -> tuple[str, str] | None:
    # Iterative: variable values are JSON, which may nest deeper than the stack allows.
    pending: list[tuple[object, str]] = [(value, "")]
    while pending:
        value, at = pending.pop()
        if isinstance(value, str):
            if (problem := text_problem(value)) is not None:
                return at, problem
        elif isinstance(value, list):
            pending += ((item, f"{at}[{i}]") for i, item in reversed(list(enumerate(value))))
        elif isinstance(value, dict):
            pending += ((item, f"{at}.{key}") for key, item in reversed(value.items()))
    return None
