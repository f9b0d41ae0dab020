"""Sandbox 法院 courts server (courts.md): 失信被执行人 and 限制消费人员, one identity a call."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, TypeVar

from aiohttp import web

from sandbox.faults import FaultResponses, FaultState, department_app, html_page, json_response
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
            # courts.md §2: cardNum matches the restricted person's ID OR the company's code.
            for key in dict.fromkeys(k for k in (restriction.zjhm, restriction.qy_dm) if k):
                xgl.setdefault(key, []).append(restriction)
        return cls(shixin=_newest_first(shixin), xgl=_newest_first(xgl))


@dataclass(slots=True)
class _Current:
    index: CourtsIndex


_INDEX_KEY: Final = web.AppKey("courts_index", _Current)


def create_app(dataset: Dataset, faults: FaultState) -> web.Application:
    """Used by the runner to serve the courts department for one dataset."""
    app = department_app(faults, _RESPONSES)
    app[_INDEX_KEY] = _Current(CourtsIndex.build(dataset))
    app.router.add_get(SHIXIN_PATH, _shixin_search)
    app.router.add_get(XGL_PATH, _xgl_search)
    return app


def replace_dataset(app: web.Application, dataset: Dataset) -> None:
    """Used by the runner when a new dataset version is published."""
    app[_INDEX_KEY].index = CourtsIndex.build(dataset)


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
