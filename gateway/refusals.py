"""Requests answered by ASGI middleware before GraphQL runs: which are guarded, and the answer."""

from __future__ import annotations

import json
from collections.abc import Iterable

import orjson
from starlette.types import Scope, Send

from core.errors import ErrorCode
from core.masking import mask_ids

# Liveness, readiness and metrics must answer while the gateway sheds load or a caller is
# over its rate; the last two are cheap however often they are asked (each shares a result).
_UNGUARDED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def guarded(scope: Scope) -> bool:
    """Whether the request limits apply: every HTTP request but liveness."""
    if scope["type"] != "http":
        return False
    path: str = scope["path"]
    return path.removeprefix(scope.get("root_path", "")) not in _UNGUARDED_PATHS


async def refuse(
    send: Send,
    status: int,
    code: ErrorCode | None,
    message: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Answers with a GraphQL error body, {"data": null, "errors": [...]}, carrying the code."""
    # Without a code only for an internal error, which is answered like a masked one. A
    # message may quote the request (strawberry's "Unknown operation named …"): IDs are
    # masked, and text UTF-8 cannot carry (a lone surrogate) is escaped, never a 500.
    error: dict[str, object] = {"message": mask_ids(message, decode=False)}
    if code is not None:
        error["extensions"] = {"code": code.value}
    document = {"data": None, "errors": [error]}
    try:
        body = orjson.dumps(document)
    except orjson.JSONEncodeError:
        body = json.dumps(document, separators=(",", ":")).encode("ascii")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
