"""市场监管 企业信用信息共享接口 (departments/market.md): batch POSTs of up to 100 codes."""

from __future__ import annotations

import asyncio
import math
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import quote

from adapters.base import Adapter, AdapterDeps, Parts, PersonResult, SubjectResult, asked_parts
from adapters.dates import parse_iso
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
)
from core.records import (
    CreditRecord,
    Department,
    Part,
    PersonFacts,
    PersonIdentity,
    Position,
    RecordKind,
    Registration,
    SearchHit,
    SearchPage,
    SubjectFacts,
)
from core.sources import FailureKind, SourceError, SourceHealth

ENTITIES_PATH = "/api/v1/entities/query"
ABNORMAL_PATH = "/api/v1/abnormal/query"
ILLEGAL_PATH = "/api/v1/illegal/query"
PENALTIES_PATH = "/api/v1/penalties/query"
SEARCH_PATH = "/api/v1/entities/search"
# market.md: "at most 100 codes; more → HTTP 413".
BATCH_SIZE = 100
# market.md: entities/search takes pageSize ≤ 50.
SEARCH_PAGE_MAX = 50
PROBE_CODE = "91610800MA703XY29Q"
# One batch endpoint per part, with the key of its list (None: the register itself).
ENDPOINTS: dict[Part, tuple[str, str | None]] = {
    Part.MARKET_ENTITIES: (ENTITIES_PATH, None),
    Part.MARKET_ABNORMAL: (ABNORMAL_PATH, "busExcList"),
    Part.MARKET_ILLEGAL: (ILLEGAL_PATH, "serILLList"),
    Part.MARKET_PENALTIES: (PENALTIES_PATH, "penaltyList"),
}


@dataclass(frozen=True, slots=True)
class _Batch:
    """One endpoint's answer for a chunk: the items per code, and the codes it says are absent."""

    items: dict[str, dict[str, object]]
    not_found: frozenset[str]


class MarketAdapter(Adapter):
    """Used for subject lookups, persons' positions and the name search."""

    department = Department.MARKET
    option_types = HTTP_OPTIONS
    # market.md publishes no capacity, only 429 when pushed (honoured with Retry-After):
    # 32 keeps 20–300 ms calls from queueing below ~100 lookups/s while bounding a burst.
    default_max_concurrency = 32
    max_batch = BATCH_SIZE
    supports_search = True
    holds_persons = True

    def __init__(self, deps: AdapterDeps) -> None:
        super().__init__(deps)
        self._http = SourceHttp(deps, Department.MARKET)

    async def lookup_subjects(
        self, usccs: Sequence[str], parts: Parts = None
    ) -> Mapping[str, SubjectResult]:
        """Facts per USCC: registration and the three lists asked for, one call each per 100."""
        asked = asked_parts(self.department, parts)
        wanted = [part for part in ENDPOINTS if part in asked]

        async def chunk(codes: list[str]) -> dict[str, SubjectResult]:
            return await self._chunk(codes, wanted)

        return await self._http.in_chunks(usccs, BATCH_SIZE, chunk)

    async def lookup_persons(self, id_numbers: Sequence[str]) -> Mapping[str, PersonResult]:
        """A person's positions (人员任职), one GET per full ID number."""
        numbers = list(dict.fromkeys(id_numbers))
        deadline = self._http.deadline()
        results = await asyncio.gather(
            *(self._http.settle(self._person(number), deadline) for number in numbers)
        )
        return dict(zip(numbers, results, strict=True))

    async def search(self, name: str, offset: int, limit: int) -> SearchPage:
        """Subjects whose name contains the text; raises SourceError when the search fails."""
        if offset < 0 or limit < 0:
            raise ValueError("offset and limit must not be negative")
        page_size, first_page, last_page = _pages_for(offset, limit)
        result = await self._http.settle(
            gather_strict(
                *(self._search_page(name, n, page_size) for n in range(first_page, last_page + 1))
            ),
            self._http.deadline(),
        )
        if isinstance(result, SourceError):
            raise result
        total = result[0][0]
        rows = [row for _, page_rows in result for row in page_rows]
        start = offset - (first_page - 1) * page_size
        return SearchPage(total=total, hits=tuple(rows[start : start + limit]))

    async def health(self) -> SourceHealth:
        """One registration query of a valid code."""
        return await self._http.probe(self._batch(ENTITIES_PATH, None, [PROBE_CODE]))

    async def _chunk(self, codes: list[str], parts: list[Part]) -> dict[str, SubjectResult]:
        answers = await gather_strict(*(self._batch(*ENDPOINTS[part], codes) for part in parts))
        batches = dict(zip(parts, answers, strict=True))
        now = self.deps.clock.now()
        results: dict[str, SubjectResult] = {}
        for code in codes:
            try:
                results[code] = _facts(code, now, batches)
            except PayloadError as exc:
                # One malformed entry costs its own code, not the other 99 of the chunk.
                results[code] = SourceError(Department.MARKET, FailureKind.BAD_PAYLOAD, str(exc))
        return results

    async def _batch(self, path: str, list_key: str | None, codes: list[str]) -> _Batch:
        """One batch endpoint's answer for a chunk of at most 100 codes."""
        body = await self._http.post_json(path, {"uniscIds": codes})
        data = _data(body)
        items: dict[str, dict[str, object]] = {}
        for raw in as_list(data, "data"):
            item = as_object(raw, "data item")
            if list_key is not None:
                as_list(item.get(list_key), list_key)
            items.setdefault(req_text(item, "uniscId"), item)
        not_found = as_list(as_object(body, "answer").get("notFound", []), "notFound")
        if not all(isinstance(code, str) for code in not_found):
            raise PayloadError("notFound holds a non-string")
        return _Batch(items, frozenset(str(code) for code in not_found))

    async def _person(self, id_number: str) -> PersonFacts:
        body = await self._http.get_json(f"/api/v1/persons/{quote(id_number, safe='')}/positions")
        positions = [_position(as_object(raw, "position")) for raw in as_list(_data(body), "data")]
        return PersonFacts(
            department=Department.MARKET,
            id_number=id_number,
            as_of=self.deps.clock.now(),
            positions=tuple(positions),
        )

    async def _search_page(
        self, keyword: str, page: int, page_size: int
    ) -> tuple[int, list[SearchHit]]:
        body = await self._http.get_json(
            SEARCH_PATH, {"keyword": keyword, "page": str(page), "pageSize": str(page_size)}
        )
        data = as_object(_data(body), "data")
        hits = [_hit(as_object(raw, "search row")) for raw in as_list(data.get("list"), "list")]
        return req_int(data, "total"), hits


def _data(body: object) -> object:
    """The data of an envelope whose status is the string "1"; used for every answer."""
    envelope = as_object(body, "answer")
    status = envelope.get("status")
    # market.md: success is the STRING "1"; "0" is a business error with msg saying why.
    # A number 1 is not the documented answer either, so it is not trusted as success.
    if not (isinstance(status, str) and status == "1"):
        msg = envelope.get("msg")
        detail = _short(msg) if isinstance(msg, str) and status == "0" else None
        message = f"business error: {detail}" if detail else "envelope status is not the string 1"
        raise SourceError(Department.MARKET, FailureKind.BAD_PAYLOAD, message)
    return envelope.get("data")


def _short(text: str) -> str:
    # The department's own one-line reason (e.g. 参数错误), for the log only (clients read
    # core.sources.PUBLIC_TEXT); kept short and printable so it cannot forge log lines.
    printable = "".join(c for c in text if not unicodedata.category(c).startswith("C"))
    return printable.strip()[:60]


def _facts(code: str, now: datetime, batches: Mapping[Part, _Batch]) -> SubjectFacts:
    """One code's facts from the answers of its chunk, one per part asked."""
    for batch in batches.values():
        # Every requested code is either answered or listed in notFound; a code the answer
        # simply leaves out could read as "nothing on record", which it is not.
        if code not in batch.items and code not in batch.not_found:
            raise PayloadError("the answer left out a requested code")
    entities = batches.get(Part.MARKET_ENTITIES)
    entity = entities.items.get(code) if entities is not None else None
    records = (
        _list_records(batches.get(Part.MARKET_ABNORMAL), code, "busExcList", _abnormal)
        + _list_records(batches.get(Part.MARKET_ILLEGAL), code, "serILLList", _illegal)
        + _list_records(batches.get(Part.MARKET_PENALTIES), code, "penaltyList", _penalty)
    )
    registration = _registration(entity) if entity is not None else None
    legal_rep = _legal_rep(entity) if entity is not None else None
    return SubjectFacts(
        department=Department.MARKET,
        uscc=code,
        as_of=now,
        # market.md: notFound lists codes with no registration; list entries still count.
        known=entity is not None or bool(records),
        name=opt_text(entity, "entName") if entity is not None else None,
        registration=registration,
        legal_rep=legal_rep,
        records=tuple(records),
        # The lists not asked are not "no entries": the facts say what they cover.
        parts=frozenset(batches),
    )


def _list_records(
    batch: _Batch | None,
    code: str,
    list_key: str,
    build: Callable[[dict[str, object]], CreditRecord],
) -> list[CreditRecord]:
    if batch is None:
        return []
    item = batch.items.get(code)
    if item is None:
        return []
    entries = as_list(item.get(list_key), list_key)
    return [build(as_object(entry, f"{list_key} entry")) for entry in entries]


def _abnormal(entry: dict[str, object]) -> CreditRecord:
    """An 经营异常名录 entry as an ABNORMAL_OPERATION record."""
    authority = opt_text(entry, "decOrg_CN")
    return CreditRecord(
        id=f"MARKET:abnormal:{req_text(entry, 'busExcId')}",
        department=Department.MARKET,
        kind=RecordKind.ABNORMAL_OPERATION,
        title=f"经营异常名录（{authority}）" if authority else "经营异常名录",
        reason=opt_text(entry, "speCause_CN"),
        authority=authority,
        listed_on=parse_iso(entry.get("abntime"), "abntime"),
        # market.md: remDate is the EMPTY STRING while listed (the list is a history).
        removed_on=parse_iso(entry.get("remDate"), "remDate"),
    )


def _illegal(entry: dict[str, object]) -> CreditRecord:
    """A 严重违法失信名单 entry as a SERIOUS_ILLEGAL record."""
    authority = opt_text(entry, "decOrg_CN")
    return CreditRecord(
        id=f"MARKET:illegal:{req_text(entry, 'serILLId')}",
        department=Department.MARKET,
        kind=RecordKind.SERIOUS_ILLEGAL,
        title=f"严重违法失信名单（{authority}）" if authority else "严重违法失信名单",
        reason=opt_text(entry, "serILLRea_CN"),
        authority=authority,
        # market.md: remDate stays "" after the 3 years run out; the resolvers apply the term.
        listed_on=parse_iso(entry.get("abntime"), "abntime"),
        removed_on=parse_iso(entry.get("remDate"), "remDate"),
    )


def _penalty(entry: dict[str, object]) -> CreditRecord:
    """A 行政处罚 entry as an ADMINISTRATIVE_PENALTY record."""
    authority = opt_text(entry, "penAuth_CN")
    number = opt_text(entry, "penDecNo")
    amount = opt_text(entry, "penAm")
    reason_parts = [
        opt_text(entry, "illegActType"),
        opt_text(entry, "penContent"),
        f"罚款{amount}万元" if amount else None,
    ]
    detail = " ".join(part for part in (authority, number) if part)
    return CreditRecord(
        id=f"MARKET:penalty:{req_text(entry, 'caseId')}",
        department=Department.MARKET,
        kind=RecordKind.ADMINISTRATIVE_PENALTY,
        title=f"行政处罚（{detail}）" if detail else "行政处罚",
        reason="；".join(part for part in reason_parts if part) or None,
        document_number=number,
        authority=authority,
        listed_on=parse_iso(entry.get("penDecIssDate"), "penDecIssDate"),
        published_until=parse_iso(entry.get("pubEndDate"), "pubEndDate"),
        # market.md: repairState "1" 已修复 (publication stopped early); objectionState "1"
        # 异议处理中. Both are strings.
        repaired=opt_text(entry, "repairState") == "1",
        disputed=opt_text(entry, "objectionState") == "1",
    )


def _registration(entity: dict[str, object]) -> Registration:
    """登记基本信息 of an entity."""
    return Registration(
        entity_type=opt_text(entity, "entType_CN"),
        status=opt_text(entity, "regState_CN"),
        registered_capital_wan=_capital(entity.get("regCap")),
        currency=opt_text(entity, "regCapCur_CN"),
        established_on=parse_iso(entity.get("estDate"), "estDate"),
        operating_from=parse_iso(entity.get("opFrom"), "opFrom"),
        # market.md: opTo is null for 长期 (no end date).
        operating_to=parse_iso(entity.get("opTo"), "opTo"),
        authority=opt_text(entity, "regOrg_CN"),
        address=opt_text(entity, "dom"),
        business_scope=opt_text(entity, "opScope"),
        approved_on=parse_iso(entity.get("apprDate"), "apprDate"),
        registration_number=opt_text(entity, "regNo"),
    )


def _capital(value: object) -> Decimal | None:
    # market.md: regCap is a STRING with 6 decimals ("500.000000"); Decimal keeps it exact.
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PayloadError("regCap is not a string")
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        raise PayloadError("regCap is not a number") from None
    if not amount.is_finite():
        raise PayloadError("regCap is not a number")
    return amount


def _legal_rep(entity: dict[str, object]) -> PersonIdentity | None:
    name = opt_text(entity, "name")
    if name is None:
        return None
    # market.md: lerepCerNo is the unmasked citizen ID, empty for foreign representatives.
    return PersonIdentity(name=name, id_number=opt_text(entity, "lerepCerNo"))


def _position(row: dict[str, object]) -> Position:
    return Position(
        uscc=req_text(row, "uniscId"),
        subject_name=opt_text(row, "entName") or "",
        role=req_text(row, "position_CN"),
        started_on=parse_iso(row.get("startDate"), "startDate"),
        # market.md: endDate is null while in office.
        ended_on=parse_iso(row.get("endDate"), "endDate"),
    )


def _hit(row: dict[str, object]) -> SearchHit:
    return SearchHit(
        uscc=req_text(row, "uniscId"),
        name=opt_text(row, "entName") or "",
        legal_rep_name=opt_text(row, "name"),
        status=opt_text(row, "regState_CN"),
        established_on=parse_iso(row.get("estDate"), "estDate"),
    )


def _pages_for(offset: int, limit: int) -> tuple[int, int, int]:
    """Page size and the first and last 1-based pages covering [offset, offset + limit)."""
    if limit == 0:
        # Only the total is wanted: the smallest page that carries it.
        return 1, 1, 1
    if limit <= SEARCH_PAGE_MAX and offset % limit == 0:
        # The usual case, a page of a pager: exactly one department page.
        return limit, offset // limit + 1, offset // limit + 1
    size = SEARCH_PAGE_MAX
    return size, offset // size + 1, math.ceil((offset + limit) / size)
