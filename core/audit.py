"""An audit entry of a personal query (contract §5): its fields, once, and its chained hash."""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Protocol

GENESIS_HASH = "0" * 64


class AuditOutcome(enum.StrEnum):
    """Whether a logged personal query was answered."""

    GRANTED = "GRANTED"
    DENIED = "DENIED"


@dataclass(frozen=True, slots=True)
class AuditRequest:
    """What the personal-query guard asks to be logged, before it answers."""

    at: datetime
    client_id: str
    role: str
    operation: str
    purpose: str | None
    authorization_ref: str | None
    target: str
    outcome: AuditOutcome
    reason: str | None

    def __post_init__(self) -> None:
        # The stored text carries the offset; a naive time would be ambiguous forever.
        if self.at.utcoffset() is None:
            raise ValueError("AuditRequest.at must be timezone-aware")


@dataclass(frozen=True, slots=True)
class AuditEntry(AuditRequest):
    """A committed entry: the request, its place in the chain, its hash and its keyed seal."""

    id: int
    prev_hash: str
    hash: str
    # HMAC-SHA256 of `hash` with the audit key; None for entries written without a key.
    seal: str | None = None


# The entry's own fields, in declaration order; every store and the hash derive from them.
REQUEST_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(AuditRequest))
# contract §5: `hash` is SHA-256 over the entry's fields and prevHash, in this order. The
# order is part of every stored chain: changing it breaks verification of existing logs.
HASHED_FIELDS: tuple[str, ...] = ("id", *REQUEST_FIELDS, "prev_hash")
# The seal is not hashed: `hash` stays what contract §5 defines, so stores written before
# the key existed still verify; the seal is an HMAC over that hash.
STORED_FIELDS: tuple[str, ...] = (*HASHED_FIELDS, "hash", "seal")
# No field of an entry is longer: the guard bounds what callers send far below this, and
# the store refuses the rest, so no caller can fill the disk through one entry.
MAX_STORED_TEXT = 1024
# Distinct prefixes, so an entry's seal can never be passed off as a head's, or back.
_ENTRY_SEAL = b"credit-gateway audit entry\x00"
_HEAD_SEAL = b"credit-gateway audit head\x00"


class AuditUnavailable(Exception):
    """The entry could not be written (or the log read); a personal query must then be denied."""


class AuditStore(Protocol):
    """Where entries are committed and read back; the gateway's runtime provides one."""

    async def record(self, request: AuditRequest) -> AuditEntry:
        """Returns once the entry is durably committed, else raises AuditUnavailable."""
        ...

    async def page(
        self, first: int, after: int | None, client_id: str | None
    ) -> tuple[list[AuditEntry], bool]:
        """Entries newest first, older than entry `after`, optionally one client's; + has-next."""
        ...


def entry_hash(**values: object) -> str:
    """SHA-256 hex over HASHED_FIELDS; used when writing and when verifying, so both agree."""
    if set(values) != set(HASHED_FIELDS):
        raise TypeError(f"entry_hash takes exactly {', '.join(HASHED_FIELDS)}")
    # Values are hashed as stored: `at` as ISO 8601 with its offset, the outcome as its name.
    canonical = json.dumps(
        [_stored_value(values[name]) for name in HASHED_FIELDS],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def entry_seal(key: bytes, digest: str) -> str:
    """HMAC-SHA256 hex of an entry's hash; used when writing and when verifying."""
    return hmac.new(
        key, _ENTRY_SEAL + digest.encode("utf-8", "backslashreplace"), hashlib.sha256
    ).hexdigest()


def head_seal(key: bytes, sealed_from: int, id_: int, digest: str) -> str:
    """HMAC-SHA256 hex of the chain's head (sealing start, last id, its hash); store and verify."""
    message = _HEAD_SEAL + f"{sealed_from}:{id_}:{digest}".encode("utf-8", "backslashreplace")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def seal_matches(expected: str, stored: object) -> bool:
    """Whether a stored seal is the expected one; compared in constant time."""
    return isinstance(stored, str) and hmac.compare_digest(expected, stored)


def unstorable(request: AuditRequest) -> str | None:
    """Why a request cannot become an entry, or None; a store checks each before batching it."""
    for name in REQUEST_FIELDS:
        value = getattr(request, name)
        if not isinstance(value, str):
            continue
        if len(value) > MAX_STORED_TEXT:
            return f"{name} is longer than {MAX_STORED_TEXT} characters"
        try:
            # The hash is over UTF-8: text that has none (a lone surrogate) cannot be chained.
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{name} is not valid Unicode text (a lone surrogate)"
    return None


def chain(id_: int, request: AuditRequest, prev_hash: str, key: bytes | None = None) -> AuditEntry:
    """The entry `request` becomes at position `id_` after `prev_hash`, sealed if keyed."""
    values = {name: getattr(request, name) for name in REQUEST_FIELDS}
    digest = entry_hash(id=id_, prev_hash=prev_hash, **values)
    seal = entry_seal(key, digest) if key is not None else None
    return AuditEntry(id=id_, prev_hash=prev_hash, hash=digest, seal=seal, **values)


def stored_row(entry: AuditEntry) -> tuple[object, ...]:
    """The entry's values in STORED_FIELDS order, as a store keeps them."""
    return tuple(_stored_value(getattr(entry, name)) for name in STORED_FIELDS)


def entry_from_row(row: Sequence[object]) -> AuditEntry:
    """An entry read back from a row in STORED_FIELDS order."""
    values: Mapping[str, object] = dict(zip(STORED_FIELDS, row, strict=True))
    return AuditEntry(
        **{
            **values,
            "at": datetime.fromisoformat(str(values["at"])),
            "outcome": AuditOutcome(str(values["outcome"])),
        }  # type: ignore[arg-type]
    )


def _stored_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value
