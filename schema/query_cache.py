"""Parsed and validated queries kept across requests, so a repeated query skips both steps."""

from __future__ import annotations

from collections.abc import Iterator

from cachetools import LRUCache
from graphql import DocumentNode, GraphQLSyntaxError, parse
from strawberry.extensions import SchemaExtension, ValidationCache
from strawberry.types.execution import ParseOptions

CACHE_SIZE = 128
# Only small documents are kept: a parsed token costs about half a kilobyte, so 128 hostile
# 2000-token queries would otherwise pin over 100 MB. Every query of the README tour and
# GraphiQL's introspection query are far below both bounds.
CACHEABLE_TOKENS = 500
CACHEABLE_CHARS = 16 * 1024


def cacheable(query: str, document: DocumentNode) -> bool:
    """Whether a document is small enough to be kept by the parse and validation caches."""
    tokens = getattr(document, "token_count", CACHEABLE_TOKENS + 1)  # set by graphql-core 3.3
    return len(query) <= CACHEABLE_CHARS and tokens <= CACHEABLE_TOKENS


class ParsedQueries:
    """Documents by query text and parser options; one per schema, shared by its requests."""

    def __init__(self) -> None:
        self._documents: LRUCache[tuple[str, int | None], DocumentNode] = LRUCache(CACHE_SIZE)

    def parse(self, query: str, options: ParseOptions) -> DocumentNode:
        """The document of a query; raises GraphQLSyntaxError like graphql-core's parse."""
        key = (query, options.get("max_tokens"))
        document = self._documents.get(key)
        if document is None:
            document = parse(query, **options)
            if cacheable(query, document):
                self._documents[key] = document
        return document


class CachedParse(SchemaExtension):
    """Parses through ParsedQueries; used instead of strawberry's ParserCache (see on_parse)."""

    def __init__(self, queries: ParsedQueries) -> None:
        self.queries = queries

    def on_parse(self) -> Iterator[None]:
        """Runs before strawberry's own parse, which is skipped once a document is set."""
        context = self.execution_context
        try:
            if context.query:
                # parse_options carry MaxTokensLimiter's limit, set when the operation began.
                context.graphql_document = self.queries.parse(context.query, context.parse_options)
        except GraphQLSyntaxError:
            # Left to strawberry's own parse (same options), which answers it as a result:
            # raised here, as strawberry's ParserCache does, it would skip every extension's
            # on_operation, MaskIdsInErrors with it.
            pass
        yield


class SmallDocumentValidationCache(ValidationCache):
    """Strawberry's validation cache, for the documents `cacheable` admits."""

    def __init__(self) -> None:
        super().__init__(maxsize=CACHE_SIZE)

    def on_validate(self) -> Iterator[None]:
        """Runs before strawberry's own validation, which is skipped once errors are set."""
        context = self.execution_context
        document = context.graphql_document
        if document is not None and cacheable(context.query or "", document):
            yield from super().on_validate()
        else:
            yield
