"""Sandbox 水利 water resources server (water.md): three open-data CSV files with ETags."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Final

from aiohttp import web

from sandbox.faults import FAULTS_KEY, FaultResponses, FaultState, department_app, html_page
from sandbox.model import Dataset, WaterGradeRow, WaterListRow, WaterPenaltyRow

GRADES_PATH: Final = "/opendata/credit-grades.csv"
LISTS_PATH: Final = "/opendata/credit-lists.csv"
PENALTIES_PATH: Final = "/opendata/penalties.csv"
# Header rows exactly as water.md publishes them (note the full-width brackets in 罚款金额（万元）).
GRADES_HEADER: Final = ("统一社会信用代码", "单位名称", "信用等级", "评价日期", "有效期至")
LISTS_HEADER: Final = (
    "记录编号",
    "统一社会信用代码",
    "单位名称",
    "名单类型",
    "列入原因",
    "认定单位",
    "列入日期",
    "公开期限至",
    "移出日期",
)
PENALTIES_HEADER: Final = (
    "处罚决定书文号",
    "统一社会信用代码",
    "行政相对人名称",
    "违法行为类型",
    "处罚内容",
    "罚款金额（万元）",
    "处罚决定日期",
    "公示截止日期",
    "处罚机关",
    "信用修复",
)
_BOM: Final = "\ufeff"


@dataclass(frozen=True, slots=True)
class RenderedFile:
    """One file's bytes as served, rendered once per dataset version."""

    body: bytes
    etag: str  # strong: a hash of the bytes
    last_modified: str  # HTTP date


@dataclass(slots=True)
class WaterFiles:
    """The three files of one dataset version, by path."""

    files: dict[str, RenderedFile]

    @classmethod
    def build(cls, dataset: Dataset, previous: WaterFiles | None = None) -> WaterFiles:
        """Used once per dataset version; an unchanged file keeps its Last-Modified."""
        now = format_datetime(datetime.now(UTC).replace(microsecond=0), usegmt=True)
        bodies = {
            GRADES_PATH: render_csv(GRADES_HEADER, map(_grade_row, dataset.water_grades)),
            LISTS_PATH: render_csv(LISTS_HEADER, map(_list_row, dataset.water_lists)),
            PENALTIES_PATH: render_csv(
                PENALTIES_HEADER, map(_penalty_row, dataset.water_penalties)
            ),
        }
        old = previous.files if previous else {}
        files: dict[str, RenderedFile] = {}
        for path, body in bodies.items():
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            same = path in old and old[path].etag == etag
            files[path] = RenderedFile(body, etag, old[path].last_modified if same else now)
        return cls(files)


_FILES_KEY: Final = web.AppKey("water_files", WaterFiles)


def create_app(dataset: Dataset, faults: FaultState) -> web.Application:
    """Used by the runner to serve the water department for one dataset."""
    app = department_app(faults, _RESPONSES)
    app[_FILES_KEY] = WaterFiles.build(dataset)
    for path in (GRADES_PATH, LISTS_PATH, PENALTIES_PATH):
        app.router.add_get(path, _serve(path))
    return app


def replace_dataset(app: web.Application, dataset: Dataset) -> None:
    """Used by the runner for the daily rebuild: new bytes, new ETag."""
    current = app[_FILES_KEY]
    current.files = WaterFiles.build(dataset, current).files


def render_csv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    """water.md: UTF-8 with BOM, CRLF, RFC 4180 quoting only where needed."""
    out = io.StringIO()
    out.write(_BOM)
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _day(value: date | None) -> str:
    # water.md: dates are YYYY/MM/DD; an empty field means no value.
    return value.strftime("%Y/%m/%d") if value else ""


def _grade_row(r: WaterGradeRow) -> tuple[str, ...]:
    return (r.uscc, r.name, r.grade, _day(r.evaluated_on), _day(r.valid_until))


def _list_row(r: WaterListRow) -> tuple[str, ...]:
    return (
        r.record_no,
        r.uscc,
        r.name,
        r.list_type,
        r.reason,
        r.authority,
        _day(r.listed_on),
        _day(r.public_until),
        _day(r.removed_on),
    )


def _penalty_row(r: WaterPenaltyRow) -> tuple[str, ...]:
    return (
        r.dec_no,
        r.uscc,
        r.name,
        r.act_type,
        r.content,
        r.amount_wan,
        _day(r.decided_on),
        _day(r.public_until),
        r.authority,
        "是" if r.repaired else "",
    )


def _serve(path: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        faults = request.app[FAULTS_KEY]
        if faults.rebuilding:
            # water.md: during a rebuild the server may answer 503; the previous file stays valid.
            response = html_page(503, "数据更新中", "开放数据文件正在重建，请稍后下载")
            response.headers["Retry-After"] = str(faults.retry_after_s)
            return response
        file = request.app[_FILES_KEY].files[path]
        headers = {"ETag": file.etag, "Last-Modified": file.last_modified}
        if _etag_matches(request.headers.get("If-None-Match", ""), file.etag):
            return web.Response(status=304, headers=headers)
        return web.Response(
            body=file.body, headers=headers, content_type="text/csv", charset="utf-8"
        )

    return handler


def _etag_matches(if_none_match: str, etag: str) -> bool:
    # RFC 9110: If-None-Match uses the weak comparison, and "*" matches any current file.
    candidates = (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))
    return any(tag in ("*", etag) for tag in candidates)


def _garbage() -> web.Response:
    # 200 and a CSV content type, but a proxy's error page instead of the file.
    body = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    return web.Response(text=body, content_type="text/csv", charset="utf-8")


_RESPONSES: Final = FaultResponses(
    maintenance=lambda: html_page(503, "系统维护", "开放数据平台正在维护"),
    failure=lambda status: html_page(status, "服务器错误", "开放数据平台内部错误"),
    throttled=lambda status: html_page(status, "请求过于频繁", "请勿频繁下载"),
    garbage=_garbage,
)
