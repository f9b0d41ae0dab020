"""Requests answered by ASGI middleware before GraphQL runs: which are guarded, and the answer."""

from __future__ import annotations

from collections.abc import Iterable

import orjson
from starlette.types import Scope, Send

from core.errors import ErrorCode

# Liveness must answer while the gateway sheds load or a caller is over its rate.
_UNGUARDED_PATHS = frozenset({"/healthz"})


def guarded(scope: Scope) -> bool:
    """Whether the request limits apply: every HTTP request but liveness."""
    if scope["type"] != "http":
        return False
    path: str = scope["path"]
    return path.removeprefix(scope.get("root_path", "")) not in _UNGUARDED_PATHS


async def refuse(
    send: Send,
    status: int,
    code: ErrorCode,
    message: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Answers with a GraphQL error body, {"data": null, "errors": [...]}, carrying the code."""
    body = orjson.dumps(
        {"data": None, "errors": [{"message": message, "extensions": {"code": code.value}}]}
    )
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
