"""Query complexity limits of contract §5 (QUERY_TOO_COMPLEX): depth, aliases and tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSyntaxError,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.validation import ASTValidationRule, MaxIntrospectionDepthRule, specified_rules
from graphql.validation.validate import ValidationAbortedError
from strawberry.extensions import SchemaExtension

from core.errors import ErrorCode, GatewayError

CODE = ErrorCode.QUERY_TOO_COMPLEX


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    """How large a query document may be ([limits] max_depth, max_aliases, max_tokens)."""

    max_depth: int = 10
    max_aliases: int = 20
    max_tokens: int = 2000
    max_fields: int = 1000
    max_field_repeats: int = 10


def validation_rules(limits: DocumentLimits) -> tuple[type[ASTValidationRule], ...]:
    """graphql-core's rules and ours; built once per schema: the validation cache keys on them."""
    coded = (
        _IntrospectionDepthRule if r is MaxIntrospectionDepthRule else r for r in specified_rules
    )
    return (_shape_rule(limits.max_depth, limits.max_aliases), *coded)


class QueryLimits(SchemaExtension):
    """Validates with the limit rules and gives graphql-core's own limit errors the code."""

    def __init__(self, rules: tuple[type[ASTValidationRule], ...]) -> None:
        self.rules = rules

    def on_operation(self) -> Iterator[None]:
        """Runs around parsing and validation, which keep their errors on the result."""
        # The whole tuple is set, not appended to: graphql-core's own introspection rule
        # is replaced by the coded one.
        self.execution_context.validation_rules = self.rules
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [_coded(e) if _is_limit_error(e) else e for e in result.errors]


def _is_limit_error(error: GraphQLError) -> bool:
    if isinstance(error.original_error, GatewayError):
        return False  # refused by our own rules, already coded
    if isinstance(error, ValidationAbortedError):
        return True  # too many errors, or graphql-core's budget for comparing fields ran out
    # The parser reports its resource limits (tokens, comments, nesting) as syntax errors;
    # only this wording sets them apart from a mistyped query.
    return isinstance(error, GraphQLSyntaxError) and error.message.endswith("Parsing aborted.")


def _coded(error: GraphQLError) -> GraphQLError:
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        original_error=GatewayError(CODE, error.message),
    )


def _refuse(message: str, node: Node | None = None) -> NoReturn:
    # Raising ValidationAbortedError ends validation at once, so the other rules spend no
    # time on a refused query; graphql-core's validate() returns this very error. The
    # GatewayError makes it a coded answer: MaskErrors keeps it and it is not logged.
    raise ValidationAbortedError(message, node, original_error=GatewayError(CODE, message))


class _IntrospectionDepthRule(MaxIntrospectionDepthRule):
    """graphql-core's recommended bound on nested introspection, as a coded refusal."""

    def report_error(self, error: GraphQLError) -> None:
        """Called by the rule when `fields`, `interfaces` and the like nest too deeply."""
        _refuse(error.message, error.nodes[0] if error.nodes else None)


def _shape_rule(max_depth: int, max_aliases: int) -> type[ValidationRule]:
    class QueryShapeRule(ValidationRule):
        """Refuses an operation deeper than max_depth fields or with more than max_aliases."""

        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            definitions = context.document.definitions
            fragments = {
                d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)
            }
            self.shapes = _Shapes(fragments)

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            """Visited after graphql-core checked that fragments do not nest past 200 levels."""
            depth, aliases = self.shapes.of(node.selection_set)
            if depth > max_depth:
                _refuse(f"query nests {depth} fields deep; at most {max_depth} allowed", node)
            if aliases > max_aliases:
                _refuse(f"query uses {aliases} aliases; at most {max_aliases} allowed", node)

    return QueryShapeRule


class _Shapes:
    """Depth and alias count of selection sets, with fragments expanded and each measured once."""

    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self._fragments = fragments
        self._measured: dict[str, tuple[int, int]] = {}
        self._open: set[str] = set()

    def of(self, selection_set: SelectionSetNode | None) -> tuple[int, int]:
        """(fields on the longest path, aliases) below a selection set."""
        depth = aliases = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                inner_depth, inner_aliases = self.of(selection.selection_set)
                aliases += inner_aliases + (selection.alias is not None)
                # Introspection (__schema, __type) is bounded by _IntrospectionDepthRule;
                # GraphiQL's own introspection query is deeper than any data query.
                if not selection.name.value.startswith("__"):
                    depth = max(depth, 1 + inner_depth)
            elif isinstance(selection, InlineFragmentNode):
                inner_depth, inner_aliases = self.of(selection.selection_set)
                depth, aliases = max(depth, inner_depth), aliases + inner_aliases
            elif isinstance(selection, FragmentSpreadNode):
                inner_depth, inner_aliases = self._fragment(selection.name.value)
                depth, aliases = max(depth, inner_depth), aliases + inner_aliases
        return depth, aliases

    def _fragment(self, name: str) -> tuple[int, int]:
        if name in self._measured:
            return self._measured[name]
        fragment = self._fragments.get(name)
        if fragment is None or name in self._open:
            return 0, 0  # unknown or cyclic: graphql-core's own rules report those
        self._open.add(name)
        shape = self.of(fragment.selection_set)
        self._open.discard(name)
        self._measured[name] = shape
        return shape
