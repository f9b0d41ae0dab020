"""Who is calling: API keys from the config, sent as `Authorization: Bearer <key>`."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import ErrorCode
from core.roles import ANONYMOUS, Caller
from gateway.config import ClientConfig
from gateway.refusals import refuse


class Authenticator:
    """Maps a presented key to its configured client by the key's SHA-256."""

    def __init__(self, clients: Iterable[ClientConfig]) -> None:
        self._by_hash = {c.key_sha256: c for c in clients}

    def caller(self, authorization: str | None) -> Caller | None:
        """The caller for an Authorization header; None when a key is sent but not configured."""
        if authorization is None:
            return ANONYMOUS
        scheme, _, key = authorization.strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return None
        client = self._by_hash.get(hashlib.sha256(key.encode("utf-8")).hexdigest())
        if client is None:
            return None
        return Caller(client.id, client.role, client.purposes)


class AuthMiddleware:
    """ASGI middleware: puts the Caller in scope["state"], or answers 401 UNAUTHENTICATED."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"authorization")
        caller = self.authenticator.caller(header)
        if caller is None:
            # An unknown key is refused, never served as public (contract §5).
            await _unauthenticated(send)
            return
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _unauthenticated(send: Send) -> None:
    challenge = (b"www-authenticate", b'Bearer realm="credit-gateway"')
    await refuse(send, 401, ErrorCode.UNAUTHENTICATED, "unknown API key", [challenge])
