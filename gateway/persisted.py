"""Trusted documents ([persisted]): operations registered by hash; roles limited to them.

The file at `[persisted] path` is a JSON manifest in one of two well-known forms, read once
at start:

- `{"<sha256 hex>": "<document text>", …}`: the `persisted-documents.json` that GraphQL
  Code Generator's client preset writes (`persistedDocuments: true`), which GraphQL Yoga,
  Hive Gateway and Hive Router read;
- `{"format": "apollo-persisted-query-manifest", "version": 1, "operations": [{"id", "body",
  …}]}`: what Apollo's `generate-persisted-query-manifest` writes.

Either way a key is the SHA-256 (lower-case hex) of the document's UTF-8 text, as the
GraphQL-over-HTTP persisted documents appendix defines `sha256:<hex>` identifiers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ErrorCode
from core.roles import Role
from gateway.config import ConfigError
from gateway.config_operations import PersistedConfig

_HEX = re.compile(r"[0-9a-f]{64}")
# GraphQL over HTTP, appendix A: a SHA256 hex document identifier. A bare hash is a custom
# identifier there, and the one GraphQL Code Generator's clients send: it names the same.
_DOCUMENT_ID = re.compile(r"(?:sha256:)?([0-9a-f]{64})")
APOLLO_FORMAT = "apollo-persisted-query-manifest"


class DocumentRefused(Exception):
    """A request the trusted-document rules refuse before GraphQL runs; the view answers it."""

    def __init__(self, status: int, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class TrustedDocuments:
    """The registered documents by SHA-256, and the roles that may send nothing else."""

    documents: Mapping[str, str] = field(default_factory=dict)
    only_for: frozenset[Role] = frozenset()

    def query_of(self, request: Mapping[str, object], role: Role) -> object:
        """Used by the GraphQL view on every request: the `query` it runs, before its checks."""
        query = request.get("query")
        document_id = request.get("documentId")
        if document_id is not None:
            if query is not None:
                # Which one would run? Apollo Router refuses the pair the same way.
                raise DocumentRefused(
                    400, ErrorCode.INVALID_ARGUMENT, "send either `query` or `documentId`"
                )
            if not isinstance(document_id, str):
                raise DocumentRefused(
                    400, ErrorCode.INVALID_ARGUMENT, "`documentId` must be a string"
                )
            match = _DOCUMENT_ID.fullmatch(document_id)
            return self._registered(match.group(1) if match else None, document_id)
        if query is None:
            extension = _persisted_query(request.get("extensions"))
            if extension is not None:
                return self._registered(extension, f"sha256:{extension}")
        if role in self.only_for:
            message = (
                f"the {role.value} role may only send registered documents, by "
                '{"documentId": "sha256:<hex>"}; this request sends a query text'
            )
            raise DocumentRefused(403, ErrorCode.FORBIDDEN, message)
        return query

    def _registered(self, sha256: str | None, named: str) -> str:
        document = self.documents.get(sha256) if sha256 is not None else None
        if document is None:
            # Apollo's code, which its clients and routers know; 404 as Apollo Router answers.
            shown = named if len(named) <= 80 else named[:77] + "…"
            raise DocumentRefused(
                404,
                ErrorCode.PERSISTED_QUERY_NOT_FOUND,
                f"no registered document has the id {shown}",
            )
        return document


def _persisted_query(extensions: object) -> str | None:
    """Apollo's `extensions.persistedQuery.sha256Hash`, the id its clients send; else None."""
    if not isinstance(extensions, Mapping):
        return None
    persisted = extensions.get("persistedQuery")
    if persisted is None:
        return None
    if (
        not isinstance(persisted, Mapping)
        or persisted.get("version") != 1
        or not isinstance(persisted.get("sha256Hash"), str)
    ):
        message = '`extensions.persistedQuery` must be {"version": 1, "sha256Hash": "<hex>"}'
        raise DocumentRefused(400, ErrorCode.INVALID_ARGUMENT, message)
    hash_: str = persisted["sha256Hash"]
    return hash_


def load_trusted_documents(config: PersistedConfig) -> TrustedDocuments:
    """Read `[persisted] path` once at start; ConfigError (exit 2) naming the file otherwise."""
    if config.path is None:
        return TrustedDocuments(only_for=frozenset(config.only_for))
    where = f"[persisted] path {config.path}"
    documents: dict[str, str] = {}
    for key, document in _entries(_read(config.path, where), where):
        if not isinstance(key, str) or not _HEX.fullmatch(key.lower()):
            raise ConfigError(f"{where}: {str(key)[:80]!r} is not a SHA-256 in hex")
        if not isinstance(document, str) or not document.strip():
            raise ConfigError(f"{where}: the document of {key} is not a GraphQL text")
        actual = hashlib.sha256(document.encode("utf-8", "surrogatepass")).hexdigest()
        if actual != key.lower():
            # A document changed after it was hashed (or a hash of another text): what the
            # partner's client sends by this id is not what the operator reviewed.
            raise ConfigError(
                f"{where}: the document registered as {key} has the SHA-256 {actual}; "
                "a document's key must be the hash of its exact text"
            )
        documents[actual] = document
    return TrustedDocuments(documents, frozenset(config.only_for))


def _read(path: Path, where: str) -> object:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read ({exc.strerror})") from None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{where} is not a JSON file of documents ({exc})") from None


def _entries(data: object, where: str) -> Iterator[tuple[object, object]]:
    """(key, document) pairs of either manifest form."""
    if not isinstance(data, dict):
        raise ConfigError(f'{where} must hold a JSON object, {{"<sha256 hex>": "<document>"}}')
    if "format" not in data:
        yield from data.items()
        return
    if data.get("format") != APOLLO_FORMAT or data.get("version") != 1:
        raise ConfigError(f'{where}: only "format": "{APOLLO_FORMAT}" with "version": 1 is known')
    operations = data.get("operations")
    if not isinstance(operations, list) or not all(isinstance(o, dict) for o in operations):
        raise ConfigError(f"{where}: operations must be a list of objects with id and body")
    for operation in operations:
        yield operation.get("id"), operation.get("body")
