"""Who may query a person (contract §5), and the audit entry written before any answer."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import strawberry
from strawberry.extensions import FieldExtension

from core.audit import AuditOutcome, AuditRequest, AuditUnavailable
from core.errors import ErrorCode, GatewayError
from core.identity import InvalidIdentity, normalize_id_number
from core.masking import mask_target
from core.roles import Caller, Role

if TYPE_CHECKING:
    from schema.context import RequestContext

log = logging.getLogger(__name__)
PERSON_OPERATION = "person"


def denial(caller: Caller, purpose: str, authorization_ref: str | None) -> GatewayError | None:
    """The contract §5 error that refuses this caller a person query, or None when allowed."""
    if caller.role in (Role.PUBLIC, Role.PARTNER):
        return GatewayError(
            ErrorCode.FORBIDDEN, "personal information is not available to this role"
        )
    if purpose not in caller.purposes:
        return GatewayError(
            ErrorCode.FORBIDDEN, f"purpose {purpose} is not allowed for this client"
        )
    if caller.role is Role.BANK and not (authorization_ref or "").strip():
        # 信易贷: a bank must name the borrower's authorisation it acts on.
        return GatewayError(
            ErrorCode.AUTHORIZATION_REQUIRED, "authorizationRef is required for banks"
        )
    return None


class AuditedPersonQuery(FieldExtension):
    """Around Query.person: checks the caller, then writes the audit entry, then resolves."""

    async def resolve_async(
        self,
        next_: Callable[..., Awaitable[Any]],
        source: Any,
        info: strawberry.Info,
        **kwargs: Any,
    ) -> Any:
        """Runs for every person call; no personal data is fetched before the entry is written."""
        ctx: RequestContext = info.context
        raw = str(kwargs.get("id_number", ""))
        purpose = str(kwargs.get("purpose", ""))
        reference = kwargs.get("authorization_ref") or None
        refused = denial(ctx.caller, purpose, reference)
        if refused is None:
            try:
                normalize_id_number(raw, ctx.today)
            except InvalidIdentity as exc:
                refused = GatewayError(exc.code, str(exc))
        request = AuditRequest(
            at=ctx.now,
            client_id=ctx.caller.client_id,
            role=ctx.caller.role.value,
            operation=PERSON_OPERATION,
            purpose=purpose or None,
            authorization_ref=reference,
            target=mask_target(raw),
            outcome=AuditOutcome.DENIED if refused else AuditOutcome.GRANTED,
            reason=refused.code if refused else None,
        )
        try:
            await ctx.services.audit.record(request)
        except AuditUnavailable as exc:
            log.error("audit entry for %s could not be written: %s", request.target, exc)
            if refused is None:
                # contract §5: no entry, no answer.
                raise GatewayError(
                    ErrorCode.FORBIDDEN,
                    "personal query denied: the audit log could not be written",
                    reason=ErrorCode.AUDIT_UNAVAILABLE.value,
                ) from None
        if refused is not None:
            raise refused
        return await next_(source, info, **kwargs)
