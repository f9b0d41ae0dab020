"""Sandbox 法院 courts server (courts.md): 失信被执行人 and 限制消费人员, one identity a call."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, TypeVar

from aiohttp import web

from sandbox.faults import FaultResponses, FaultState, department_app, html_page, json_response
from sandbox.generator import LiveListings
from sandbox.listings import (
    ADD,
    ListingAnswer,
    ListingError,
    UnknownListing,
    add_listing_route,
    answer,
    parse_change,
)
from sandbox.model import Dataset, RestrictionCase, ShixinCase

SHIXIN_PATH: Final = "/shixin/search"
XGL_PATH: Final = "/xgl/search"
DEFAULT_PAGE_SIZE: Final = 10
MAX_PAGE_SIZE: Final = 20  # courts.md: "maximum 20; larger values are answered with 400"
# An 18-character citizen ID or USCC (the USCC alphabet holds the ID's digits and X), or a
# 9-character GB 11714 organisation code; anything else is a "malformed cardNum" (400).
_CARD_NUM: Final = re.compile(r"[0-9A-HJ-NPQRTUWXY]{18}|[0-9A-Z]{8}[0-9X]")
_NUMBER: Final = re.compile(r"[0-9]{1,9}")

Record = dict[str, object]
_Case = TypeVar("_Case", ShixinCase, RestrictionCase)


@dataclass(slots=True)
class CourtsIndex:
    """Cases keyed by the exact stored identity, newest publication first; rendered per page."""

    shixin: dict[str, list[ShixinCase]]
    xgl: dict[str, list[RestrictionCase]]

    @classmethod
    def build(cls, dataset: Dataset) -> CourtsIndex:
        """Used once per dataset version: at create_app and on replace_dataset."""
        shixin: dict[str, list[ShixinCase]] = {}
        for case in dataset.shixin:
            shixin.setdefault(case.card_num, []).append(case)
        xgl: dict[str, list[RestrictionCase]] = {}
        for restriction in dataset.restrictions:
            for key in _xgl_keys(restriction):
                xgl.setdefault(key, []).append(restriction)
        return cls(shixin=_newest_first(shixin), xgl=_newest_first(xgl))

    def publish_shixin(self, case: ShixinCase) -> None:
        """A new case, found at once under its stored identity, in publication order."""
        _publish(self.shixin, case, (case.card_num,))

    def publish_xgl(self, rows: Iterable[RestrictionCase]) -> None:
        """The rows of a new 限制消费 case, under the person's ID and the company's code."""
        for row in rows:
            _publish(self.xgl, row, _xgl_keys(row))

    def withdraw_shixin(self, case_id: str) -> ShixinCase | None:
        """Deletes a case from publication, as the courts do when it ends; None if unknown."""
        case = _find(self.shixin, case_id)
        if case is not None:
            _withdraw(self.shixin, case, (case.card_num,))
        return case

    def withdraw_xgl(self, record_id: str) -> list[RestrictionCase]:
        """Deletes the case a 限制消费 row belongs to: every row of it ([] if unknown)."""
        row = _find(self.xgl, record_id)
        if row is None:
            return []
        # The rows one case restricts share its number, court, filing day and company.
        case = (row.ah, row.court_name, row.filed_on, row.qy_dm)
        rows = [
            r
            for r in (self.xgl.get(row.qy_dm, []) if row.qy_dm else [row])
            if (r.ah, r.court_name, r.filed_on, r.qy_dm) == case
        ]
        for each in rows:
            _withdraw(self.xgl, each, _xgl_keys(each))
        return rows


@dataclass(slots=True)
class _Current:
    index: CourtsIndex
    dataset: Dataset
    live: LiveListings | None = None  # made on the first listing change

    def listings(self) -> LiveListings:
        if self.live is None:
            self.live = LiveListings(self.dataset)
        return self.live


_INDEX_KEY: Final = web.AppKey("courts_index", _Current)


def create_app(dataset: Dataset, faults: FaultState) -> web.Application:
    """Used by the runner to serve the courts department for one dataset."""
    app = department_app(faults, _RESPONSES)
    app[_INDEX_KEY] = _Current(CourtsIndex.build(dataset), dataset)
    app.router.add_get(SHIXIN_PATH, _shixin_search)
    app.router.add_get(XGL_PATH, _xgl_search)
    add_listing_route(app, change_listings)
    return app


def replace_dataset(app: web.Application, dataset: Dataset) -> None:
    """Used by the runner when a new dataset version is published (listing changes go too)."""
    current = app[_INDEX_KEY]
    current.index, current.dataset, current.live = CourtsIndex.build(dataset), dataset, None


def change_listings(app: web.Application, body: object) -> ListingAnswer:
    """Used by POST /_admin/listings and the runner's add_listing/end_listing.

    add: a new 失信被执行人 case (`shixin`) or 限制消费 case (`xgl`) of a dataset company,
    published today and stored under its USCC; end: the case deleted from publication, as
    the courts delete a case that is concluded (courts.md: every returned record is current).
    """
    change = parse_change("courts", body)
    current = app[_INDEX_KEY]
    live = current.listings()
    index = current.index
    if change.action == ADD:
        company = live.company(change.uscc)
        if company is None:
            raise ListingError(f"uscc {change.uscc!r} is not a company of the dataset")
        if change.list == "shixin":
            case = live.shixin(company)
            index.publish_shixin(case)
            return answer("courts", change, company.uscc, [case.case_id], [_shixin_record(case)])
        rows = live.restriction(company)
        index.publish_xgl(rows)
        ids, records = [r.case_id for r in rows], [_xgl_record(r) for r in rows]
        return answer("courts", change, company.uscc, ids, records)
    if change.list == "shixin":
        ended = index.withdraw_shixin(change.record_id)
        if ended is None:
            raise UnknownListing(f"no 失信被执行人 record {change.record_id!r}")
        subject = None if ended.is_person else live.uscc_of(ended.card_num)
        return answer("courts", change, subject, [ended.case_id], [_shixin_record(ended)])
    rows = index.withdraw_xgl(change.record_id)
    if not rows:
        raise UnknownListing(f"no 限制消费 record {change.record_id!r}")
    # The asked-for row first, so `id` is the id the caller gave.
    rows.sort(key=lambda r: r.case_id != change.record_id)
    subject = live.uscc_of(rows[0].qy_dm) if rows[0].qy_dm else None
    return answer(
        "courts", change, subject, [r.case_id for r in rows], [_xgl_record(r) for r in rows]
    )


def mask_card_num(card_num: str) -> str:
    """Persons' identities as the courts publish them: first 10 and last 4 kept."""
    return card_num[:10] + "****" + card_num[-4:]


def _shixin_record(case: ShixinCase) -> Record:
    return {
        "id": case.case_id,
        "iname": case.iname,
        "caseCode": case.case_code,
        "age": case.age if case.is_person else 0,
        "sexy": case.sex if case.is_person else "",
        "cardNum": mask_card_num(case.card_num) if case.is_person else case.card_num,
        "businessEntity": "" if case.is_person else case.business_entity,
        "partyTypeName": "580" if case.is_person else "581",  # a code, despite the name
        "courtName": case.court_name,
        "areaName": case.area_name,
        "gistId": case.gist_id,
        "gistUnit": case.gist_unit,
        "duty": case.duty,
        "performance": case.performance,
        "performedPart": case.performed_part,
        "unperformPart": case.unperformed_part,
        "disruptTypeName": ",".join(case.disrupt_types),
        "regDate": case.reg_date.strftime("%Y%m%d"),
        "publishDate": f"{case.publish_date.year:04d}年{case.publish_date.month:02d}月"
        f"{case.publish_date.day:02d}日",
    }


def _xgl_record(case: RestrictionCase) -> Record:
    return {
        "ID": case.case_id,
        "AH": case.ah,
        "XM": case.xm,
        "ZJHM": mask_card_num(case.zjhm) if case.zjhm else "",
        "QY_MC": case.qy_mc,
        "QY_DM": case.qy_dm,
        "ZXFYMC": case.court_name,
        "LASJStr": case.filed_on.isoformat(),
        "FBRQ": case.published_on.isoformat(),
    }


def _xgl_keys(row: RestrictionCase) -> list[str]:
    # courts.md §2: cardNum matches the restricted person's ID OR the company's code.
    return list(dict.fromkeys(k for k in (row.zjhm, row.qy_dm) if k))


def _publish(table: dict[str, list[_Case]], case: _Case, keys: Iterable[str]) -> None:
    for key in keys:
        cases = table.setdefault(key, [])
        cases.append(case)
        cases.sort(key=_publication_order)


def _withdraw(table: dict[str, list[_Case]], case: _Case, keys: Iterable[str]) -> None:
    for key in keys:
        cases = table.get(key, [])
        cases[:] = [c for c in cases if c is not case]
        if not cases:
            table.pop(key, None)


def _find(table: dict[str, list[_Case]], record_id: str) -> _Case | None:
    return next((c for cases in table.values() for c in cases if c.case_id == record_id), None)


def _newest_first(table: dict[str, list[_Case]]) -> dict[str, list[_Case]]:
    # Newest publication first; the record id breaks ties so pages never overlap.
    for cases in table.values():
        cases.sort(key=_publication_order)
    return table


def _publication_order(case: ShixinCase | RestrictionCase) -> tuple[int, str]:
    if isinstance(case, ShixinCase):
        return -case.publish_date.toordinal(), case.case_id
    return -case.published_on.toordinal(), case.case_id


async def _shixin_search(request: web.Request) -> web.Response:
    return _search(request, request.app[_INDEX_KEY].index.shixin, _shixin_record)


async def _xgl_search(request: web.Request) -> web.Response:
    return _search(request, request.app[_INDEX_KEY].index.xgl, _xgl_record)


def _search(
    request: web.Request, table: dict[str, list[_Case]], render: Callable[[_Case], Record]
) -> web.Response:
    params = _parse_params(request.query)
    if params is None:
        return json_response({"code": 400, "message": "参数错误", "result": None}, status=400)
    card_num, page, page_size = params
    cases = table.get(card_num, [])
    start = (page - 1) * page_size
    result = {
        "total": len(cases),
        "page": page,
        "pageSize": page_size,
        "items": [render(case) for case in cases[start : start + page_size]],
    }
    return json_response({"code": 200, "message": "成功", "result": result})


def _parse_params(query: Mapping[str, str]) -> tuple[str, int, int] | None:
    card_num = query.get("cardNum", "")
    page = _positive_int(query.get("page", "1"))
    page_size = _positive_int(query.get("pageSize", str(DEFAULT_PAGE_SIZE)))
    if not _CARD_NUM.fullmatch(card_num) or page is None or page_size is None:
        return None
    return (card_num, page, page_size) if page_size <= MAX_PAGE_SIZE else None


def _positive_int(raw: str) -> int | None:
    if not _NUMBER.fullmatch(raw):
        return None
    value = int(raw)
    return value if value >= 1 else None


def _throttled(status: int) -> web.Response:
    # courts.md "Errors": the 429 carries the same envelope with code 429.
    return json_response(
        {"code": 429, "message": "访问过于频繁，请稍后再试", "result": None}, status
    )


def _garbage() -> web.Response:
    # A single-sign-on portal page answered with 200, as gateways in front of courts do.
    body = "<html><head><title>统一身份认证</title></head><body>请先登录</body></html>"
    return web.Response(text=body, content_type="text/html", charset="utf-8")


_RESPONSES: Final = FaultResponses(
    maintenance=lambda: html_page(503, "系统维护中", "执行信息查询系统正在维护，请稍后访问"),
    failure=lambda status: html_page(status, "系统错误", "服务器内部错误"),
    throttled=_throttled,
    garbage=_garbage,
)
