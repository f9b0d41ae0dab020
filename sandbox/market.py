"""Sandbox 市场监管 market regulation server (market.md): batch POSTs and single GETs."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from itertools import accumulate
from typing import Final, TypeVar

import orjson
from aiohttp import web

from sandbox.faults import FaultResponses, FaultState, department_app, html_page, json_response
from sandbox.generator import LiveListings
from sandbox.listings import (
    ADD,
    ListingAnswer,
    ListingChange,
    ListingEnded,
    ListingError,
    UnknownListing,
    add_listing_route,
    answer,
    parse_change,
)
from sandbox.model import Company, Dataset, MarketListEntry, MarketPenalty, PositionRow

MAX_BATCH: Final = 100  # market.md: "at most 100 codes; more → HTTP 413"
MAX_SEARCH_PAGE_SIZE: Final = 50  # market.md: "pageSize ≤ 50"
DEFAULT_SEARCH_PAGE_SIZE: Final = 10
_NUMBER: Final = re.compile(r"[0-9]{1,9}")
_CERT_NO: Final = re.compile(r"[0-9]{17}[0-9X]")
_ID_WEIGHTS: Final = tuple(2 ** (17 - i) % 11 for i in range(17))

Record = dict[str, object]
_Row = TypeVar("_Row", MarketListEntry, MarketPenalty)


class NameSearch:
    """Substring search on company names: one joined text searched at C speed, built once."""

    def __init__(self, companies: Iterable[Company]) -> None:
        # A stable order for paging: name, then code.
        self._companies = sorted(companies, key=lambda c: (c.name, c.uscc))
        self._text = "\n".join(c.name for c in self._companies)
        lengths = (len(c.name) + 1 for c in self._companies[:-1])
        self._starts = list(accumulate(lengths, initial=0))

    def find(self, keyword: str) -> list[Company]:
        """Companies whose name contains keyword, each once, in the stable order."""
        if not keyword or "\n" in keyword:  # the separator never belongs to a name
            return []
        found: list[Company] = []
        position = self._text.find(keyword)
        while position >= 0:
            index = bisect_right(self._starts, position) - 1
            found.append(self._companies[index])
            if index + 1 == len(self._starts):
                break
            position = self._text.find(keyword, self._starts[index + 1])
        return found


@dataclass(slots=True)
class MarketIndex:
    """Market rows keyed by USCC (persons by certNo); rendered per answer."""

    entities: dict[str, Company]
    abnormal: dict[str, list[MarketListEntry]]
    illegal: dict[str, list[MarketListEntry]]
    penalties: dict[str, list[MarketPenalty]]
    positions: dict[str, list[PositionRow]]
    search: NameSearch

    @classmethod
    def build(cls, dataset: Dataset) -> MarketIndex:
        """Used once per dataset version: at create_app and on replace_dataset."""
        return cls(
            entities={c.uscc: c for c in dataset.companies},
            abnormal=_history(dataset.abnormal),
            illegal=_history(dataset.illegal),
            penalties=_history(dataset.penalties),
            positions=_positions(dataset.positions),
            search=NameSearch(dataset.companies),
        )

    def abnormal_of(self, uscc: str) -> list[Record]:
        """经营异常名录 entries of one company, oldest first."""
        return [_abnormal_entry(e) for e in self.abnormal.get(uscc, ())]

    def illegal_of(self, uscc: str) -> list[Record]:
        """严重违法失信名单 entries of one company, oldest first."""
        return [_illegal_entry(e) for e in self.illegal.get(uscc, ())]

    def penalties_of(self, uscc: str) -> list[Record]:
        """行政处罚 of one company, oldest first."""
        return [_penalty_entry(p) for p in self.penalties.get(uscc, ())]

    def publish(self, table: dict[str, list[_Row]], row: _Row) -> None:
        """A new entry in a company's history, in the history's order."""
        rows = table.setdefault(row.uscc, [])
        rows.append(row)
        rows.sort(key=_history_order)

    def find(self, table: dict[str, list[_Row]], record_id: str) -> tuple[list[_Row], int] | None:
        """The history holding the entry with that id and its place there, or None."""
        for rows in table.values():
            for place, row in enumerate(rows):
                if _row_id(row) == record_id:
                    return rows, place
        return None


@dataclass(slots=True)
class _Current:
    index: MarketIndex
    dataset: Dataset
    live: LiveListings | None = None  # made on the first listing change

    def listings(self) -> LiveListings:
        if self.live is None:
            self.live = LiveListings(self.dataset)
        return self.live


_INDEX_KEY: Final = web.AppKey("market_index", _Current)


def create_app(dataset: Dataset, faults: FaultState) -> web.Application:
    """Used by the runner to serve the market regulation department for one dataset."""
    app = department_app(faults, _RESPONSES)
    app[_INDEX_KEY] = _Current(MarketIndex.build(dataset), dataset)
    app.router.add_post("/api/v1/entities/query", _entities_query)
    app.router.add_post(
        "/api/v1/abnormal/query", _list_query("busExcList", MarketIndex.abnormal_of)
    )
    app.router.add_post("/api/v1/illegal/query", _list_query("serILLList", MarketIndex.illegal_of))
    app.router.add_post(
        "/api/v1/penalties/query", _list_query("penaltyList", MarketIndex.penalties_of)
    )
    app.router.add_get("/api/v1/persons/{certNo}/positions", _positions_query)
    app.router.add_get("/api/v1/entities/search", _entities_search)
    add_listing_route(app, change_listings)
    return app


def replace_dataset(app: web.Application, dataset: Dataset) -> None:
    """Used by the runner when a new dataset version is published (listing changes go too)."""
    current = app[_INDEX_KEY]
    current.index, current.dataset, current.live = MarketIndex.build(dataset), dataset, None


# --- listings changed while it runs (sandbox/listings.py) -----------------------------------


def change_listings(app: web.Application, body: object) -> ListingAnswer:
    """Used by POST /_admin/listings and the runner's add_listing/end_listing.

    add: a new 经营异常名录 entry (`abnormal`), 严重违法失信名单 entry (`serious_illegal`)
    listed today, or a 双公示 penalty (`penalty`) published today. end: a list entry gets
    `remDate` today (market.md: removed entries stay, the list is a history); a penalty
    gets `repairState` "1" (信用修复: publication stopped early), the only way market.md
    shows a penalty ending before its `pubEndDate`.
    """
    change = parse_change("market", body)
    current = app[_INDEX_KEY]
    if change.action == ADD:
        return _add_listing(current, change)
    if change.list == "penalty":
        return _repair_penalty(current, change)
    return _remove_entry(current, change)


def _add_listing(current: _Current, change: ListingChange) -> ListingAnswer:
    index, live = current.index, current.listings()
    company = index.entities.get(change.uscc)
    if company is None:
        raise ListingError(f"uscc {change.uscc!r} is not a company of the dataset")
    if change.list == "penalty":
        penalty = live.penalty(company)
        index.publish(index.penalties, penalty)
        return answer("market", change, company.uscc, [penalty.case_id], [_penalty_entry(penalty)])
    if change.list == "abnormal":
        entry = live.abnormal(company)
        index.publish(index.abnormal, entry)
        return answer("market", change, company.uscc, [entry.entry_id], [_abnormal_entry(entry)])
    entry = live.illegal(company)
    index.publish(index.illegal, entry)
    return answer("market", change, company.uscc, [entry.entry_id], [_illegal_entry(entry)])


def _remove_entry(current: _Current, change: ListingChange) -> ListingAnswer:
    abnormal = change.list == "abnormal"
    index = current.index
    table = index.abnormal if abnormal else index.illegal
    found = index.find(table, change.record_id)
    if found is None:
        what = "经营异常名录" if abnormal else "严重违法失信名单"
        raise UnknownListing(f"no {what} entry {change.record_id!r}")
    rows, place = found
    entry = rows[place]
    if entry.removed_on is not None:
        raise ListingEnded(f"entry {entry.entry_id!r} was removed on {entry.removed_on}")
    # A copy: the dataset's own row stays as generated (replace_dataset brings it back).
    rows[place] = removed = current.listings().removed(entry, abnormal)
    render = _abnormal_entry if abnormal else _illegal_entry
    return answer("market", change, removed.uscc, [removed.entry_id], [render(removed)])


def _repair_penalty(current: _Current, change: ListingChange) -> ListingAnswer:
    index = current.index
    found = index.find(index.penalties, change.record_id)
    if found is None:
        raise UnknownListing(f"no 行政处罚 {change.record_id!r}")
    rows, place = found
    penalty = rows[place]
    if penalty.repaired:
        raise ListingEnded(f"penalty {penalty.case_id!r} is already repaired")
    rows[place] = repaired = replace(penalty, repaired=True)
    return answer("market", change, repaired.uscc, [repaired.case_id], [_penalty_entry(repaired)])


# --- rendering (per answer: at most 100 subjects) -----------------------------------------


def _entity(c: Company) -> Record:
    return {
        "uniscId": c.uscc,
        "entName": c.name,
        "regNo": c.reg_no,
        "entType_CN": c.ent_type,
        "name": c.legal_rep_name,
        "lerepCerNo": c.legal_rep_id,  # the sharing interface returns it unmasked
        "regCap": c.reg_cap,  # a string with 6 decimals, never a number
        "regCapCur_CN": c.currency,
        "estDate": c.est_date.isoformat(),
        "opFrom": c.op_from.isoformat(),
        "opTo": c.op_to.isoformat() if c.op_to else None,  # null for 长期
        "regOrg_CN": c.reg_org,
        "regState_CN": c.reg_state,
        "dom": c.dom,
        "opScope": c.op_scope,
        "apprDate": c.appr_date.isoformat(),
    }


def _abnormal_entry(e: MarketListEntry) -> Record:
    return {
        "busExcId": e.entry_id,
        "speCause_CN": e.cause,
        "abntime": e.listed_on.isoformat(),
        "decOrg_CN": e.dec_org,
        "remExcpRes_CN": e.rem_reason,
        "remDate": _date_or_empty(e.removed_on),
        "reDecOrg_CN": e.rem_org,
    }


def _illegal_entry(e: MarketListEntry) -> Record:
    # market.md: remDate stays "" even after the 3-year term has run out.
    return {
        "serILLId": e.entry_id,
        "serILLRea_CN": e.cause,
        "abntime": e.listed_on.isoformat(),
        "decOrg_CN": e.dec_org,
        "remExcpRes_CN": e.rem_reason,
        "remDate": _date_or_empty(e.removed_on),
        "reDecOrg_CN": e.rem_org,
    }


def _penalty_entry(p: MarketPenalty) -> Record:
    return {
        "caseId": p.case_id,
        "penDecNo": p.dec_no,
        "illegActType": p.act_type,
        "penContent": p.content,
        "penAm": p.amount_wan,  # a string, possibly ""
        "penAuth_CN": p.authority,
        "penDecIssDate": p.decided_on.isoformat(),
        "publicDate": p.public_on.isoformat(),
        "pubEndDate": p.public_until.isoformat(),
        "repairState": "1" if p.repaired else "0",
        "objectionState": "1" if p.disputed else "0",
    }


def _search_row(c: Company) -> Record:
    return {
        "uniscId": c.uscc,
        "entName": c.name,
        "name": c.legal_rep_name,
        "regState_CN": c.reg_state,
        "estDate": c.est_date.isoformat(),
    }


def _date_or_empty(day: date | None) -> str:
    return day.isoformat() if day else ""


def _history(rows: Iterable[_Row]) -> dict[str, list[_Row]]:
    table: dict[str, list[_Row]] = {}
    for row in rows:
        table.setdefault(row.uscc, []).append(row)
    for entries in table.values():
        entries.sort(key=_history_order)
    return table


def _row_id(row: MarketListEntry | MarketPenalty) -> str:
    return row.entry_id if isinstance(row, MarketListEntry) else row.case_id


def _history_order(row: MarketListEntry | MarketPenalty) -> tuple[date, str]:
    if isinstance(row, MarketListEntry):
        return row.listed_on, row.entry_id
    return row.decided_on, row.case_id


def _positions(rows: Iterable[PositionRow]) -> dict[str, list[PositionRow]]:
    table: dict[str, list[PositionRow]] = {}
    for row in rows:
        table.setdefault(row.cert_no, []).append(row)
    for held in table.values():
        held.sort(key=lambda r: (r.start, r.uscc, r.position))
    return table


def _position(r: PositionRow) -> Record:
    return {
        "uniscId": r.uscc,
        "entName": r.ent_name,
        "position_CN": r.position,
        "startDate": r.start.isoformat(),
        "endDate": r.end.isoformat() if r.end else None,  # null while in office
    }


# --- handlers -----------------------------------------------------------------------------


def _envelope(data: object, not_found: Sequence[str] | None = None) -> web.Response:
    body: Record = {"status": "1", "msg": "success", "data": data}  # status is a STRING
    if not_found is not None:
        body["notFound"] = list(not_found)
    return json_response(body)


def _business_error(msg: str, http_status: int = 200) -> web.Response:
    return json_response({"status": "0", "msg": msg, "data": None}, status=http_status)


async def _requested_codes(request: web.Request) -> list[str] | web.Response:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _business_error("请求报文不是合法的JSON", 400)
    codes = body.get("uniscIds") if isinstance(body, dict) else None
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        return _business_error("uniscIds必须是字符串数组", 400)
    if len(codes) > MAX_BATCH:
        return _business_error(f"单次查询不得超过{MAX_BATCH}个统一社会信用代码", 413)
    return list(dict.fromkeys(codes))  # one answer per distinct code, in request order


async def _entities_query(request: web.Request) -> web.Response:
    codes = await _requested_codes(request)
    if isinstance(codes, web.Response):
        return codes
    entities = request.app[_INDEX_KEY].index.entities
    return _envelope(
        [_entity(entities[c]) for c in codes if c in entities],
        [c for c in codes if c not in entities],
    )


def _list_query(
    list_key: str, entries_of: Callable[[MarketIndex, str], list[Record]]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        codes = await _requested_codes(request)
        if isinstance(codes, web.Response):
            return codes
        index = request.app[_INDEX_KEY].index
        # market.md: one item per requested code that exists, an empty list when none.
        data = [
            {"uniscId": c, list_key: entries_of(index, c)} for c in codes if c in index.entities
        ]
        return _envelope(data, [c for c in codes if c not in index.entities])

    return handler


async def _positions_query(request: web.Request) -> web.Response:
    cert_no = request.match_info["certNo"]
    problem = cert_no_problem(cert_no)
    if problem is not None:
        return _business_error(problem)  # market.md: HTTP 200 with status "0"
    held = request.app[_INDEX_KEY].index.positions.get(cert_no, [])
    return _envelope([_position(r) for r in held])


def cert_no_problem(cert_no: str) -> str | None:
    """Why a certNo is malformed (shape, GB 11643 check digit, birth date), or None."""
    if not _CERT_NO.fullmatch(cert_no):
        return "证件号码格式错误：应为18位居民身份证号码"
    total = sum(int(d) * w for d, w in zip(cert_no[:17], _ID_WEIGHTS, strict=True))
    check = (12 - total % 11) % 11
    if cert_no[17] != ("X" if check == 10 else str(check)):
        return "证件号码格式错误：校验位不正确"
    try:
        date(int(cert_no[6:10]), int(cert_no[10:12]), int(cert_no[12:14]))
    except ValueError:
        return "证件号码格式错误：出生日期无效"
    return None


async def _entities_search(request: web.Request) -> web.Response:
    params = _search_params(request.query)
    if isinstance(params, str):
        return _business_error(params, 400)
    keyword, page, page_size = params
    found = request.app[_INDEX_KEY].index.search.find(keyword)
    start = (page - 1) * page_size
    page_rows = [_search_row(c) for c in found[start : start + page_size]]
    return _envelope({"total": len(found), "list": page_rows})


def _search_params(query: Mapping[str, str]) -> tuple[str, int, int] | str:
    keyword = query.get("keyword", "")
    page = _positive_int(query.get("page", "1"))
    page_size = _positive_int(query.get("pageSize", str(DEFAULT_SEARCH_PAGE_SIZE)))
    if not keyword:
        return "keyword不能为空"
    if page is None or page_size is None:
        return "page和pageSize必须是正整数"
    if page_size > MAX_SEARCH_PAGE_SIZE:
        return f"pageSize不得超过{MAX_SEARCH_PAGE_SIZE}"
    return keyword, page, page_size


def _positive_int(raw: str) -> int | None:
    if not _NUMBER.fullmatch(raw):
        return None
    value = int(raw)
    return value if value >= 1 else None


# --- failure answers ----------------------------------------------------------------------


def _failure(status: int) -> web.Response:
    # market.md "Errors": the maintenance 503 may be empty; internal failures come as HTML.
    return web.Response(status=503) if status == 503 else html_page(status, "Internal Server Error")


def _garbage() -> web.Response:
    # A JSON answer cut short by an overloaded proxy: 200, application/json, unparseable.
    return web.Response(
        body=b'{"status": "1", "msg": "success", "data": [{"uniscId": "',
        content_type="application/json",
        charset="utf-8",
    )


_RESPONSES: Final = FaultResponses(
    maintenance=lambda: web.Response(status=503),
    failure=_failure,
    throttled=lambda status: _business_error("系统繁忙，请稍后重试", status),
    garbage=_garbage,
)
