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
from resolvers.plan import FULL, Plan, knowing
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


async def find_subject(
    loaders: Loaders, today: date, raw: str, plan: Plan = FULL
) -> SubjectView | None:
    """The subject for one code; None when no department that answered knows it."""
    uscc = parse_uscc(raw)
    (view,) = await views_of(loaders, today, [uscc], knowing(plan))
    return view if view.known else None


async def views_of(
    loaders: Loaders,
    today: date,
    usccs: Sequence[str],
    plan: Plan,
    hints: Sequence[str | None] | None = None,
    need_known: bool = True,
) -> list[SubjectView]:
    """Views of the codes asked on the plan; the others are asked where it cannot settle them."""
    names = hints if hints is not None else [None] * len(usccs)
    answers = await loaders.subjects(usccs, plan)
    views = [
        SubjectView(code, answer, today, name_hint=hint)
        for code, answer, hint in zip(usccs, answers, names, strict=True)
    ]
    # contract §1: null (NOT_FOUND) only when no department knows the code, and the name is
    # any department's when the register has none: then everyone is asked. The loaders
    # keep what was asked already, so this round asks only the parts not yet asked.
    unsettled = [i for i, view in enumerate(views) if not view.settled(plan, need_known)]
    if unsettled:
        more = await loaders.subjects([usccs[i] for i in unsettled], FULL)
        for i, answer in zip(unsettled, more, strict=True):
            views[i] = SubjectView(usccs[i], answer, today, name_hint=names[i])
    return views


async def find_subjects(
    loaders: Loaders, today: date, raws: Sequence[str], max_batch: int, plan: Plan = FULL
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
    views = dict(zip(unique, await views_of(loaders, today, unique, knowing(plan)), strict=True))
    lookups = []
    for raw, item in zip(raws, parsed, strict=True):
        if isinstance(item, InvalidIdentity):
            lookups.append(Lookup(echoed(raw), error_code=item.code, error_message=str(item)))
        else:
            lookups.append(_lookup(views[item]))
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
    plan: Plan = FULL,
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
    # Every hit is shown (the register found it), so only the fields' needs are asked.
    views = await views_of(
        loaders, today, [h.uscc for h in hits], plan, [h.name for h in hits], need_known=False
    )
    edges = [(encode_cursor(offset + index), view) for index, view in enumerate(views)]
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
