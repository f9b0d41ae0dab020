"""Query complexity limits of contract §5 (QUERY_TOO_COMPLEX): depth, aliases, tokens, fields."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSyntaxError,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)
from graphql.validation import ASTValidationRule, MaxIntrospectionDepthRule, specified_rules
from graphql.validation.validate import ValidationAbortedError
from strawberry.extensions import SchemaExtension

from core.errors import ErrorCode, GatewayError

CODE = ErrorCode.QUERY_TOO_COMPLEX
# graphql-core's parser refuses selection sets nested deeper than this within a definition;
# through fragments a document nests deeper, and the walks below would exhaust the stack.
MAX_NESTING = 200


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    """How large a query document may be ([limits] max_depth, max_aliases, max_tokens, …)."""

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
    # Ours first: it measures the document when the visit enters it, before any other rule
    # has looked at a node, and a refusal ends validation there.
    return (_shape_rule(limits), *coded)


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


def _shape_rule(limits: DocumentLimits) -> type[ValidationRule]:
    class QueryShapeRule(ValidationRule):
        """Refuses a document past max_depth, max_aliases, max_fields or max_field_repeats."""

        def enter_document(self, node: DocumentNode, *_: Any) -> None:
            """The first node visited: nothing has been validated yet, so a refusal is cheap."""
            _measure(node, limits)

    return QueryShapeRule


def _measure(document: DocumentNode, limits: DocumentLimits) -> None:
    # Both walks cost time linear in the document, whatever its fragments expand to:
    # the first one counts fragments without expanding them, and the second one, which
    # expands them, only runs once the first one has bounded the expansion by max_fields.
    definitions = document.definitions
    fragments = {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
    shapes = _Shapes(fragments)
    fields = 0
    roots: list[SelectionSetNode] = []
    for operation in definitions:
        if isinstance(operation, OperationDefinitionNode):
            shape = shapes.of(operation.selection_set)
            if shape.depth > limits.max_depth:
                message = (
                    f"query nests {shape.depth} fields deep; at most {limits.max_depth} allowed"
                )
                _refuse(message, operation)
            if shape.aliases > limits.max_aliases:
                message = (
                    f"query uses {shape.aliases} aliases; at most {limits.max_aliases} allowed"
                )
                _refuse(message, operation)
            fields += shape.fields
            roots.append(operation.selection_set)
    # graphql-core validates fragments no operation spreads on their own, so they count
    # too; a fragment that spreads itself is not expanded where it is spread (that would
    # never end), so it is checked on its own as well.
    unused = [name for name in fragments if not shapes.measured(name)]
    for name in unused:
        fields += shapes.fragment(name).fields
    roots += [fragments[name].selection_set for name in dict.fromkeys([*unused, *shapes.cyclic])]
    if fields > limits.max_fields:
        _refuse(_too_many_fields(limits))
    _Merged(fragments, shapes.cyclic, limits).check(roots)


def _too_many_fields(limits: DocumentLimits) -> str:
    return (
        f"query selects more than {limits.max_fields} fields, a fragment's fields counted "
        f"each time it is spread; at most {limits.max_fields} allowed"
    )


@dataclass(frozen=True, slots=True)
class _Shape:
    depth: int  # fields on the longest path below, introspection not counted
    aliases: int
    fields: int  # field selections below, fragments expanded


_EMPTY = _Shape(0, 0, 0)


class _Shapes:
    """Shapes of selection sets, with fragments expanded and each fragment measured once."""

    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self._fragments = fragments
        self._measured: dict[str, _Shape] = {}
        self._open: set[str] = set()
        # Fragments spread from within themselves (directly or through others): the spread
        # closing the cycle counts nothing, and graphql-core reports the cycle.
        self.cyclic: set[str] = set()

    def of(self, selection_set: SelectionSetNode | None, level: int = 0) -> _Shape:
        """The shape below a selection set; counts multiply with each spread of a fragment."""
        if level > MAX_NESTING:
            _refuse(f"query nests more than {MAX_NESTING} selections deep, fragments included")
        depth = aliases = fields = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                inner = self.of(selection.selection_set, level + 1)
                aliases += inner.aliases + (selection.alias is not None)
                fields += inner.fields + 1
                # Introspection (__schema, __type) is bounded by _IntrospectionDepthRule;
                # GraphiQL's own introspection query is deeper than any data query.
                if not selection.name.value.startswith("__"):
                    depth = max(depth, 1 + inner.depth)
                continue
            if isinstance(selection, InlineFragmentNode):
                inner = self.of(selection.selection_set, level + 1)
            elif isinstance(selection, FragmentSpreadNode):
                inner = self.fragment(selection.name.value, level + 1)
            else:
                continue
            depth, aliases, fields = (
                max(depth, inner.depth),
                aliases + inner.aliases,
                fields + inner.fields,
            )
        return _Shape(depth, aliases, fields)

    def fragment(self, name: str, level: int = 0) -> _Shape:
        """The shape of a fragment's selections, measured the first time it is asked for."""
        if name in self._measured:
            return self._measured[name]
        fragment = self._fragments.get(name)
        if fragment is None:
            return _EMPTY  # unknown: graphql-core's own rules report it
        if name in self._open:
            self.cyclic.add(name)
            return _EMPTY
        self._open.add(name)
        shape = self.of(fragment.selection_set, level)
        self._open.discard(name)
        self._measured[name] = shape
        return shape

    def measured(self, name: str) -> bool:
        """Whether a walk so far reached the fragment; used to find the unused ones."""
        return name in self._measured


# The fields of a selection set by response name, fragments expanded: for each name, the
# distinct sub-selections (None for a leaf) with how often each is selected.
_Fields = dict[str, dict[int, tuple[SelectionSetNode | None, int]]]


class _Merged:
    """Same-named fields merged as graphql-core's OverlappingFieldsCanBeMergedRule sees them.

    That rule compares every pair of fields selected under one response name, and then
    their sub-selections pairwise, at every level: n repeats cost n² comparisons, and
    repeats below repeats multiply. Here the fields under one response name are merged
    (with their sub-selections, fragments expanded), and each merged set may select a name
    at most max_field_repeats times, so the rule's work stays small.
    """

    def __init__(
        self, fragments: dict[str, FragmentDefinitionNode], cyclic: set[str], limits: DocumentLimits
    ) -> None:
        self._fragments = fragments
        self._cyclic = cyclic  # not expanded: the roots include them
        self._limits = limits
        self._fields: dict[int, _Fields] = {}  # by id(selection set)
        self._counted = 0

    def check(self, roots: list[SelectionSetNode]) -> None:
        """Refuses a merged selection set repeating a name too often, or too many fields."""
        for root in roots:
            self._check({id(root): (root, 1)}, (), 0)

    def _check(
        self, merged: dict[int, tuple[SelectionSetNode, int]], path: tuple[str, ...], level: int
    ) -> None:
        if level > MAX_NESTING:
            _refuse(f"query nests more than {MAX_NESTING} selections deep, fragments included")
        below: dict[str, dict[int, tuple[SelectionSetNode | None, int]]] = {}
        counts: Counter[str] = Counter()
        for selection_set, times in merged.values():
            for name, subs in self._of(selection_set, level).items():
                into = below.setdefault(name, {})
                for key, (sub, repeats) in subs.items():
                    counts[name] += times * repeats
                    into[key] = (sub, times * repeats + into.get(key, (sub, 0))[1])
        for name, count in counts.items():
            if count > self._limits.max_field_repeats:
                where = ".".join((*path, name))
                _refuse(
                    f"query selects {where} {count} times in one place, fragments and "
                    f"same-named fields merged; at most {self._limits.max_field_repeats} allowed"
                )
        # A backstop for fragments that spread themselves: the first walk bounded the rest.
        self._counted += counts.total()
        if self._counted > self._limits.max_fields:
            _refuse(_too_many_fields(self._limits))
        for name, subs in below.items():
            nested = {key: (sub, n) for key, (sub, n) in subs.items() if sub is not None}
            if nested:
                self._check(nested, (*path, name), level + 1)

    def _of(self, selection_set: SelectionSetNode, level: int) -> _Fields:
        """The fields of one selection set, computed once (fragments are spread often)."""
        fields = self._fields.get(id(selection_set))
        if fields is not None:
            return fields
        if level > MAX_NESTING:
            _refuse(f"query nests more than {MAX_NESTING} selections deep, fragments included")
        fields = {}
        # A fragment spread n times is expanded once and counted n times.
        spreads: Counter[str] = Counter()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = (selection.alias or selection.name).value
                _add(fields, name, selection.selection_set, 1)
            elif isinstance(selection, InlineFragmentNode):
                _merge(fields, self._of(selection.selection_set, level + 1), 1)
            elif isinstance(selection, FragmentSpreadNode):
                spreads[selection.name.value] += 1
        for name, times in spreads.items():
            fragment = self._fragments.get(name)
            if fragment is not None and name not in self._cyclic:
                _merge(fields, self._of(fragment.selection_set, level + 1), times)
        self._fields[id(selection_set)] = fields
        return fields


def _add(fields: _Fields, name: str, sub: SelectionSetNode | None, times: int) -> None:
    subs = fields.setdefault(name, {})
    key = id(sub) if sub is not None else 0
    subs[key] = (sub, times + subs.get(key, (sub, 0))[1])


def _merge(fields: _Fields, inner: _Fields, times: int) -> None:
    for name, subs in inner.items():
        for sub, repeats in subs.values():
            _add(fields, name, sub, times * repeats)
