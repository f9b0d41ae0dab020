"""Role checks at field level (contract §5); resolvers ask, this module decides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import strawberry

from core.errors import ErrorCode, GatewayError
from core.roles import Role

if TYPE_CHECKING:
    from schema.context import RequestContext


@dataclass(frozen=True, slots=True)
class Viewer:
    """What the caller of this request may see of personal data."""

    anonymous: bool
    regulator: bool


def context(info: strawberry.Info) -> RequestContext:
    """The request context, typed."""
    ctx: RequestContext = info.context
    return ctx


def viewer(info: strawberry.Info) -> Viewer:
    """Used by fields that show more or less by role."""
    role = context(info).caller.role
    return Viewer(anonymous=role is Role.PUBLIC, regulator=role is Role.REGULATOR)


def require_regulator(info: strawberry.Info, what: str) -> None:
    """FORBIDDEN unless the caller is a regulator."""
    if context(info).caller.role is not Role.REGULATOR:
        raise GatewayError(ErrorCode.FORBIDDEN, f"{what} is for regulators only")


def require_not_public(info: strawberry.Info, what: str) -> None:
    """FORBIDDEN for anonymous callers."""
    if context(info).caller.role is Role.PUBLIC:
        raise GatewayError(ErrorCode.FORBIDDEN, f"{what} needs an API key")
