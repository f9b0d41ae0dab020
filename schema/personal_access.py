"""Who may query a person (contract §5), and the audit entry written before any answer."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import strawberry
from strawberry.extensions import FieldExtension

from gateway.audit import AuditOutcome, AuditRequest, AuditUnavailable
from gateway.auth import Caller
from gateway.config import Role
from gateway.errors import GatewayError
from gateway.identity import InvalidIdentity, mask_id_number, normalize_id_number

if TYPE_CHECKING:
    from gateway.context import RequestContext

log = logging.getLogger(__name__)
PERSON_OPERATION = "person"
ID_LENGTH = 18


def denial(caller: Caller, purpose: str, authorization_ref: str | None) -> GatewayError | None:
    """The contract §5 error that refuses this caller a person query, or None when allowed."""
    if caller.role in (Role.PUBLIC, Role.PARTNER):
        return GatewayError("FORBIDDEN", "personal information is not available to this role")
    if purpose not in caller.purposes:
        return GatewayError("FORBIDDEN", f"purpose {purpose} is not allowed for this client")
    if caller.role is Role.BANK and not (authorization_ref or "").strip():
        # 信易贷: a bank must name the borrower's authorisation it acts on.
        return GatewayError("AUTHORIZATION_REQUIRED", "authorizationRef is required for banks")
    return None


def masked_target(raw: str) -> str:
    """The identity as the audit log keeps it: masked, never the full number."""
    number = raw.strip().upper()
    if len(number) == ID_LENGTH:
        return mask_id_number(number)
    # Not an ID's shape: nothing of it is kept, only its length (capped).
    return "*" * min(len(number), ID_LENGTH)


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
            target=masked_target(raw),
            outcome=AuditOutcome.DENIED if refused else AuditOutcome.GRANTED,
            reason=refused.code if refused else None,
        )
        try:
            await ctx.runtime.audit.record(request)
        except AuditUnavailable as exc:
            log.error("audit entry for %s could not be written: %s", request.target, exc)
            if refused is None:
                # contract §5: no entry, no answer.
                raise GatewayError(
                    "FORBIDDEN",
                    "personal query denied: the audit log could not be written",
                    reason="AUDIT_UNAVAILABLE",
                ) from None
        if refused is not None:
            raise refused
        return await next_(source, info, **kwargs)
