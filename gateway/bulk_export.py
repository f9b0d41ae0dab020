"""GET /exports/bulk-checks/<id>.csv (contract §8): a bulk check's results as a file for Excel.

UTF-8 with a byte order mark (Excel reads Chinese names right only with it), CRLF rows, one
row per submitted code in submission order, streamed page by page from the store.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from core.errors import ErrorCode
from core.roles import ANONYMOUS, Caller, Role
from resolvers.bulk import BulkChecks
from store.bulk import ResultRow

COLUMNS = (
    "index",
    "uscc",
    "error",
    "name",
    "status",
    "complete",
    "missing_sources",
    "listings",
    "measures",
    "credit_class",
    "checked_at",
)
PAGE = 1000
BOM = "\ufeff"
# A cell Excel would read as a formula (CSV injection): such text is written with a leading
# apostrophe, which Excel shows as plain text. Only client text can start so (a code as
# submitted, a name), never a status or a date.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


async def export_bulk_check(request: Request) -> Response:
    """The route's endpoint; 404 for an id the caller may not read, FORBIDDEN without a key."""
    caller: Caller = request.scope.get("state", {}).get("caller", ANONYMOUS)
    bulk: BulkChecks | None = request.app.state.runtime.services.bulk
    check_id = request.path_params["check_id"]
    if caller.role is Role.PUBLIC:
        return _refused(403, ErrorCode.FORBIDDEN, "the export needs an API key")
    check = await bulk.get(caller, check_id) if bulk is not None else None
    if check is None or bulk is None:
        return _refused(404, ErrorCode.NOT_FOUND, "no bulk check with this id")
    filename = f"bulk-check-{check.id}.csv"
    return StreamingResponse(
        _lines(bulk, check.id),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


async def _lines(bulk: BulkChecks, check_id: str) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow(COLUMNS)
    after = -1
    while True:
        rows = await bulk.export_rows(check_id, after, PAGE)
        for row in rows:
            writer.writerow(_cells(row))
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < PAGE:
            return
        after = rows[-1].index


def _cells(row: ResultRow) -> list[str]:
    """One CSV row; the cells of a code not final yet are empty but its index and code."""
    result: dict[str, Any] = row.result or {}
    error = row.error or ("NOT_FOUND" if row.status == "NOT_FOUND" else "")
    joint = result.get("jointPunishment") or {}
    supervision = result.get("supervision") or {}
    return [
        str(row.index),
        _text(row.uscc),
        error,
        _text(result.get("name") or ""),
        joint.get("status", ""),
        _flag(joint.get("complete")),
        ";".join(joint.get("missingSources", [])),
        ";".join(r["id"] for r in joint.get("listings", [])),
        ";".join(m["code"] for m in joint.get("measures", [])),
        supervision.get("creditClass", ""),
        result.get("checkedAt", "") if not row.error else "",
    ]


def _flag(value: object) -> str:
    return "" if value is None else "true" if value else "false"


def _text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _refused(status: int, code: ErrorCode, message: str) -> Response:
    # The body every refusal before GraphQL has (gateway/refusals.py).
    body = {"data": None, "errors": [{"message": message, "extensions": {"code": code.value}}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
