"""State callers own (contract §7: bulk checks, watchlists): who may read it, its cursors."""

from __future__ import annotations

import base64
import binascii

from core.errors import ErrorCode, GatewayError
from core.roles import Caller, Role


def require_key(caller: Caller, what: str) -> None:
    """FORBIDDEN for anonymous callers: such state belongs to a configured client."""
    if caller.role is Role.PUBLIC:
        raise GatewayError(ErrorCode.FORBIDDEN, f"{what} needs an API key")


def may_read(caller: Caller, owner: str) -> bool:
    """The client that created it, or a regulator (everyone's)."""
    return caller.role is Role.REGULATOR or owner == caller.client_id


def compound_cursor(kind: str, number: int, name: str) -> str:
    """An opaque cursor of a number and a name (a check's or a member's place)."""
    return base64.urlsafe_b64encode(f"{kind}:{number}:{name}".encode()).decode()


def decode_compound(cursor: str, kind: str) -> tuple[int, str]:
    """The number and name of a compound_cursor of this kind; INVALID_CURSOR otherwise."""
    try:
        parts = base64.urlsafe_b64decode(cursor.encode()).decode().split(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        parts = []
    if (
        len(parts) == 3
        and parts[0] == kind
        and parts[1].isascii()
        and parts[1].isdigit()
        and len(parts[1]) <= 18
        and 0 < len(parts[2]) <= 64
    ):
        return int(parts[1]), parts[2]
    raise GatewayError(ErrorCode.INVALID_CURSOR, "after is not a cursor this query returned")
