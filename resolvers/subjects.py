"""Query logic for subjects: one, a batch, and a name search, all through the loaders."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from adapters.base import Adapter
from core.errors import ErrorCode, GatewayError
from core.identity import InvalidIdentity, normalize_uscc
from core.masking import mask_ids
from core.sources import SourceError
from resolvers.loaders import Loaders
from resolvers.subject_view import SubjectView


@dataclass(frozen=True, slots=True)
class Lookup:
    """One item of a batch: the code as sent, and a subject or a coded error."""

    uscc: str
    view: SubjectView | None = None
    error_code: ErrorCode | None = None
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class SearchResult:
    """A page of subjects found by name, with opaque offset cursors."""

    total: int
    edges: list[tuple[str, SubjectView]]
    has_next: bool


def echoed(raw: str) -> str:
    """An invalid code as a batch item repeats it: a citizen ID sent by mistake is masked."""
    # Only what passed validation is echoed as it came; anything else may be personal data
    # pasted into the wrong column (contract §1: a full ID only ever reaches a regulator).
    return mask_ids(raw, decode=False)


def parse_uscc(raw: str) -> str:
    """Normalised USCC, or the INVALID_USCC error of contract §1."""
    try:
        return normalize_uscc(raw)
    except InvalidIdentity as exc:
        raise GatewayError(exc.code, str(exc)) from None


async def find_subject(loaders: Loaders, today: date, raw: str) -> SubjectView | None:
    """The subject for one code; None when no department that answered knows it."""
    uscc = parse_uscc(raw)
    view = SubjectView(uscc, await loaders.subject(uscc), today)
    return view if view.known else None


async def find_subjects(
    loaders: Loaders, today: date, raws: Sequence[str], max_batch: int
) -> list[Lookup]:
    """Many subjects in input order; one bad code is that item's error, not the batch's."""
    if len(raws) > max_batch:
        raise GatewayError(ErrorCode.BATCH_TOO_LARGE, f"at most {max_batch} codes per call")
    parsed: list[str | InvalidIdentity] = []
    for raw in raws:
        try:
            parsed.append(normalize_uscc(raw))
        except InvalidIdentity as exc:
            parsed.append(exc)
    unique = list(dict.fromkeys(p for p in parsed if isinstance(p, str)))
    answers = dict(zip(unique, await loaders.subjects(unique), strict=True))
    lookups = []
    for raw, item in zip(raws, parsed, strict=True):
        if isinstance(item, InvalidIdentity):
            lookups.append(Lookup(echoed(raw), error_code=item.code, error_message=str(item)))
        else:
            lookups.append(_lookup(SubjectView(item, answers[item], today)))
    return lookups


def _lookup(view: SubjectView) -> Lookup:
    if view.known:
        return Lookup(view.uscc, view)
    if view.missing:
        # Not found is only said when every department answered; otherwise it is unknown.
        names = ", ".join(d.value for d in view.missing)
        return Lookup(view.uscc, None, ErrorCode.SOURCE_UNAVAILABLE, f"no answer from {names}")
    return Lookup(view.uscc, None, ErrorCode.NOT_FOUND, "no department knows this code")


async def search_subjects(
    searcher: Adapter | None,
    loaders: Loaders,
    today: date,
    name: str,
    first: int,
    after: str | None,
    page_max: int,
) -> SearchResult:
    """Subjects whose registered name contains the text, stitched like any other subject."""
    text = name.strip()
    if not text:
        raise GatewayError(ErrorCode.INVALID_ARGUMENT, "name must not be empty")
    if not 1 <= first <= page_max:
        raise GatewayError(ErrorCode.INVALID_ARGUMENT, f"first must be between 1 and {page_max}")
    if searcher is None:
        raise GatewayError(ErrorCode.SOURCE_UNAVAILABLE, "no source searches by name")
    offset = decode_cursor(after) + 1 if after else 0
    try:
        with loaders.budget():
            page = await searcher.search(text, offset, first)
    except SourceError as exc:
        raise GatewayError(
            ErrorCode.SOURCE_UNAVAILABLE,
            "the name search did not answer",
            department=exc.department.value,
        ) from None
    hits = list(page.hits)[:first]
    answers = await loaders.subjects([h.uscc for h in hits])
    edges = []
    for index, (hit, answer) in enumerate(zip(hits, answers, strict=True)):
        view = SubjectView(hit.uscc, answer, today, name_hint=hit.name)
        edges.append((encode_cursor(offset + index), view))
    return SearchResult(page.total, edges, offset + len(hits) < page.total)


def encode_cursor(position: int, kind: str = "o") -> str:
    """Opaque cursor for an item: an offset ("o") or an audit entry id ("a")."""
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode()


def decode_cursor(cursor: str, kind: str = "o") -> int:
    """The number in a cursor made by encode_cursor with this kind; INVALID_CURSOR otherwise."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        prefix, _, number = text.partition(":")
        # ASCII digits only (str.isdigit takes "²" too), and no longer than a position can
        # be: a huge number would overflow the store's integers.
        if prefix == kind and number.isascii() and number.isdigit() and len(number) <= 18:
            return int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise GatewayError(ErrorCode.INVALID_CURSOR, "after is not a cursor this query returned")
