"""法院 执行信息 (departments/courts.md): 失信被执行人 and 限制消费人员, one identity a call."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from adapters.base import Adapter, AdapterDeps, Parts, PersonResult, SubjectResult
from adapters.dates import parse_chinese, parse_compact, parse_iso
from adapters.http import (
    HTTP_OPTIONS,
    PayloadError,
    SourceHttp,
    as_list,
    as_object,
    gather_strict,
    opt_text,
    req_int,
    req_text,
    status_error,
)
from adapters.options import knob, read_options
from core.identity import org_code_of
from core.masking import mask_given_id
from core.records import (
    CreditRecord,
    Department,
    PersonFacts,
    RecordKind,
    SubjectFacts,
)
from core.sources import SourceHealth

SHIXIN_PATH = "/shixin/search"
XGL_PATH = "/xgl/search"
# courts.md: pageSize defaults to 10 and anything above 20 is answered with 400.
PAGE_SIZE = 20
# A total this large is not a real answer; refusing it keeps one reply from spawning
# thousands of page calls.
MAX_PAGES = 500
# A subject's first pages: 失信 and 限制消费, each under the USCC and the organisation code.
CALLS_PER_SUBJECT = 4
# courts.md: "default 50 requests/s per caller"; beyond it the courts answer 429.
DEFAULT_MAX_RPS = 50.0
DEFAULT_MAX_BURST = 4
# A syntactically valid USCC (the example in courts.md) for the health probe.
PROBE_CODE = "91610800MA703XY29Q"
# courts.md: partyTypeName is a code despite its name.
PERSON_PARTY = "580"
ORGANISATION_PARTY = "581"
_DISRUPT_SEPARATORS = re.compile(r"[,，;；、]")


@dataclass(frozen=True, slots=True)
class _Page:
    """One page of a search answer."""

    total: int
    items: list[dict[str, object]]


@dataclass(frozen=True, slots=True)
class _Found:
    """Everything both resources hold on a set of identities, merged by record id."""

    shixin: dict[str, dict[str, object]]
    xgl: dict[str, dict[str, object]]


@dataclass(frozen=True, slots=True)
class CourtsOptions:
    """Knobs of [sources.courts]: the documented rate the whole gateway keeps to."""

    max_rps: float = knob(DEFAULT_MAX_RPS, above=0, maximum=10_000)
    # Calls that may leave at once: a subject's four (失信 and 限制消费, by USCC and by
    # organisation code) go together; the sliding window still keeps max_rps in any second.
    max_burst: int = knob(DEFAULT_MAX_BURST, minimum=1, maximum=100)


class CourtsAdapter(Adapter):
    """Used for every subject and person lookup at the courts."""

    department = Department.COURTS
    option_types = (*HTTP_OPTIONS, CourtsOptions)
    # courts.md: 50 requests/s per caller; at the slowest normal answer (0.3 s) that is 15
    # calls in flight, so more would only wait for the pace.
    default_max_concurrency = 16
    # courts.md: "There is NO batch call."
    max_batch = 1
    holds_persons = True

    def __init__(self, deps: AdapterDeps) -> None:
        super().__init__(deps)
        options = read_options(CourtsOptions, deps.config.options)
        self._max_rps = options.max_rps
        self._http = SourceHttp(
            deps, Department.COURTS, max_rps=options.max_rps, burst=options.max_burst
        )

    async def lookup_subjects(
        self, usccs: Sequence[str], parts: Parts = None
    ) -> Mapping[str, SubjectResult]:
        """Facts per USCC, each found under both its USCC and its organisation code."""
        # The courts cannot be split (one part): every lookup answers all they hold.
        codes = list(dict.fromkeys(usccs))
        deadline = self._http.deadline()
        results = await asyncio.gather(
            *(self._http.settle(self._subject(code), deadline) for code in codes)
        )
        return dict(zip(codes, results, strict=True))

    def background_pace_s(self, codes: int, share: float) -> float:
        """Four first pages a code (失信 and 限制消费, USCC and organisation code), at the share."""
        return codes * CALLS_PER_SUBJECT / (self._max_rps * share)

    async def lookup_persons(self, id_numbers: Sequence[str]) -> Mapping[str, PersonResult]:
        """A person's own 失信 and 限制消费 records, by the full citizen ID."""
        numbers = list(dict.fromkeys(id_numbers))
        deadline = self._http.deadline()
        results = await asyncio.gather(
            *(self._http.settle(self._person(number), deadline) for number in numbers)
        )
        return dict(zip(numbers, results, strict=True))

    async def health(self) -> SourceHealth:
        """One 失信 search of a valid code, one record long."""
        return await self._http.probe(self._page(SHIXIN_PATH, PROBE_CODE, 1, page_size=1))

    async def _subject(self, uscc: str) -> SubjectFacts:
        # courts.md §1: cases filed before the USCC reform are stored under the 9-character
        # organisation code; one organisation can have records under both forms.
        found = await self._search((uscc, org_code_of(uscc)))
        shixin = [_shixin_record(item) for item in found.shixin.values()]
        xgl = [_xgl_record(item) for item in found.xgl.values()]
        records = _ordered(shixin) + _ordered(xgl)
        return SubjectFacts(
            department=Department.COURTS,
            uscc=uscc,
            as_of=self.deps.clock.now(),
            known=bool(records),
            name=_subject_name(found),
            records=tuple(records),
        )

    async def _person(self, id_number: str) -> PersonFacts:
        # Natural persons are stored by their full 18-character citizen ID (courts.md §1).
        found = await self._search((id_number,))
        shixin = [_shixin_record(item) for item in found.shixin.values()]
        xgl = [_xgl_record(item) for item in found.xgl.values()]
        names = [r.party_name for r in shixin + xgl if r.party_name]
        return PersonFacts(
            department=Department.COURTS,
            id_number=id_number,
            as_of=self.deps.clock.now(),
            name=names[0] if names else None,
            records=tuple(_ordered(shixin) + _ordered(xgl)),
        )

    async def _search(self, card_nums: Sequence[str]) -> _Found:
        queries = [(path, card) for path in (SHIXIN_PATH, XGL_PATH) for card in card_nums]
        # The identity's first pages go out together, booked up front at the courts' pace:
        # when the pace cannot send them all before the deadline, nothing is sent (and no
        # call is spent on an answer that would come too late).
        async with self._http.booked(len(queries)):
            answers = await gather_strict(*(self._all_items(path, card) for path, card in queries))
        shixin: dict[str, dict[str, object]] = {}
        xgl: dict[str, dict[str, object]] = {}
        for (path, _card), items in zip(queries, answers, strict=True):
            # The two resources number their records separately: merge each by its own id.
            target, key = (shixin, "id") if path == SHIXIN_PATH else (xgl, "ID")
            for item in items:
                target.setdefault(req_text(item, key), item)
        return _Found(shixin, xgl)

    async def _all_items(self, path: str, card_num: str) -> list[dict[str, object]]:
        """Every item stored under one identity on one resource, across all pages."""
        # Pages are read separately, so a record published or deleted meanwhile shifts the
        # pages under us; when the totals disagree, read the whole list once more.
        for _attempt in range(2):
            items, consistent = await self._read_pages(path, card_num)
            if consistent:
                return items
        raise PayloadError("paged answers did not add up to their total")

    async def _read_pages(self, path: str, card_num: str) -> tuple[list[dict[str, object]], bool]:
        first = await self._page(path, card_num, 1)
        pages = math.ceil(first.total / PAGE_SIZE)
        if pages > MAX_PAGES:
            raise PayloadError("total is implausibly large")
        # courts.md: `total` counts all pages; every page is followed, or records are lost.
        rest = await gather_strict(*(self._page(path, card_num, n) for n in range(2, pages + 1)))
        items = first.items + [item for page in rest for item in page.items]
        key = "id" if path == SHIXIN_PATH else "ID"
        distinct = {req_text(item, key) for item in items}
        same_total = all(page.total == first.total for page in rest)
        return items, same_total and len(distinct) == first.total

    async def _page(self, path: str, card_num: str, page: int, page_size: int = PAGE_SIZE) -> _Page:
        """One page of one resource for one identity; envelope errors raised as SourceError."""
        body = await self._http.get_json(
            path, {"cardNum": card_num, "page": str(page), "pageSize": str(page_size)}
        )
        envelope = as_object(body, "answer")
        code = envelope.get("code")
        if isinstance(code, bool) or not isinstance(code, int):
            raise PayloadError("envelope code is not a number")
        if code != 200:
            # The envelope repeats the HTTP semantics (400 参数错误, 429); a non-200 code in
            # a 200 answer is classified the same way.
            raise status_error(Department.COURTS, code, {})
        result = as_object(envelope.get("result"), "result")
        total = req_int(result, "total")
        if total < 0:
            raise PayloadError("total is negative")
        items = [as_object(item, "item") for item in as_list(result.get("items"), "items")]
        if len(items) > page_size:
            raise PayloadError("page holds more items than asked for")
        return _Page(total, items)


def _shixin_record(item: Mapping[str, object]) -> CreditRecord:
    """A 失信被执行人 item as a DISHONEST_DEBTOR record; used for subjects and persons."""
    record_id = req_text(item, "id")
    party_type = opt_text(item, "partyTypeName")
    if party_type not in (PERSON_PARTY, ORGANISATION_PARTY):
        raise PayloadError("partyTypeName is neither 580 nor 581")
    court = opt_text(item, "courtName")
    case_code = opt_text(item, "caseCode")
    # regDate (YYYYMMDD) is read only to reject a malformed answer; the record is listed
    # on its publishDate (YYYY年MM月DD日).
    parse_compact(item.get("regDate"), "regDate")
    card_num = opt_text(item, "cardNum") if party_type == PERSON_PARTY else None
    disrupt = opt_text(item, "disruptTypeName")
    # courts.md: disruptTypeName is a comma-separated list of 具体情形.
    reasons = [part.strip() for part in _DISRUPT_SEPARATORS.split(disrupt or "") if part.strip()]
    return CreditRecord(
        id=f"COURTS:{record_id}",
        department=Department.COURTS,
        kind=RecordKind.DISHONEST_DEBTOR,
        title=_title("失信被执行人", court, case_code),
        reason="；".join(reasons) or None,
        document_number=case_code,
        authority=court,
        listed_on=parse_chinese(item.get("publishDate"), "publishDate"),
        party_name=opt_text(item, "iname"),
        # Persons' cardNum is already masked by the courts; an organisation's is its code,
        # not a personal ID.
        party_id_masked=mask_given_id(card_num),
    )


def _xgl_record(item: Mapping[str, object]) -> CreditRecord:
    """A 限制消费人员 item as a CONSUMPTION_RESTRICTION record; used for subjects and persons."""
    record_id = req_text(item, "ID")
    court = opt_text(item, "ZXFYMC")
    case_code = opt_text(item, "AH")
    company = opt_text(item, "QY_MC")
    parse_iso(item.get("LASJStr"), "LASJStr")
    return CreditRecord(
        # courts.md: xgl numbers its records apart from shixin; the prefix keeps the two
        # id spaces from colliding.
        id=f"COURTS:xgl:{record_id}",
        department=Department.COURTS,
        kind=RecordKind.CONSUMPTION_RESTRICTION,
        title=_title("限制消费", court, case_code),
        reason=f"关联企业：{company}" if company else None,
        document_number=case_code,
        authority=court,
        listed_on=parse_iso(item.get("FBRQ"), "FBRQ"),
        party_name=opt_text(item, "XM"),
        party_id_masked=mask_given_id(opt_text(item, "ZJHM")),
    )


def _title(what: str, court: str | None, case_code: str | None) -> str:
    detail = " ".join(part for part in (court, case_code) if part)
    return f"{what}（{detail}）" if detail else what


def _ordered(records: list[CreditRecord]) -> list[CreditRecord]:
    return sorted(records, key=lambda r: (r.listed_on or date.min, r.id), reverse=True)


def _subject_name(found: _Found) -> str | None:
    for item in found.shixin.values():
        if item.get("partyTypeName") == ORGANISATION_PARTY:
            name = opt_text(item, "iname")
            if name:
                return name
    for item in found.xgl.values():
        name = opt_text(item, "QY_MC")
        if name:
            return name
    return None
