"""Who may query a person (contract §5), and the audit entry written before any answer."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import strawberry
from strawberry.extensions import FieldExtension

from core.audit import AuditOutcome, AuditRequest, AuditUnavailable
from core.errors import ErrorCode, GatewayError
from core.identity import InvalidIdentity, normalize_id_number
from core.masking import mask_ids, mask_target
from core.roles import Caller, Role

if TYPE_CHECKING:
    from schema.context import RequestContext

log = logging.getLogger(__name__)
PERSON_OPERATION = "person"
# A reference names an authorisation document (信易贷 授权书编号); 128 characters is far
# more than any such number, and bounds what one call can write to the audit store.
MAX_AUTHORIZATION_REF = 128
# Letters that render as nothing (Hangul fillers, the blank Braille pattern): a reference
# made only of them, of spaces, of control or format characters (zero-width space, BOM,
# direction marks) or of combining marks names no authorisation.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_VISIBLE_CATEGORIES = frozenset("LNPS")


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
    if authorization_ref is not None:
        if _storable(authorization_ref) != authorization_ref:
            return GatewayError(
                ErrorCode.INVALID_ARGUMENT,
                "authorizationRef is not valid Unicode text (it holds a lone surrogate)",
            )
        if len(authorization_ref) > MAX_AUTHORIZATION_REF:
            return GatewayError(
                ErrorCode.INVALID_ARGUMENT,
                f"authorizationRef must be at most {MAX_AUTHORIZATION_REF} characters, "
                f"not {len(authorization_ref)}",
            )
    if caller.role is Role.BANK and not _names_something(authorization_ref or ""):
        # 信易贷: a bank must name the borrower's authorisation it acts on.
        return GatewayError(
            ErrorCode.AUTHORIZATION_REQUIRED, "authorizationRef is required for banks"
        )
    return None


def audited_reference(authorization_ref: str | None) -> str | None:
    """Used by the guard for every entry: the reference made storable, IDs masked, bounded."""
    if authorization_ref is None:
        return None
    # Masked before and after invisible characters are dropped: a zero-width space can
    # split a number (hiding it until dropped) or stand between two runs of digits (which
    # dropping glues into one run no number is seen in). NFKC turns full-width digits into
    # the ones masking recognises.
    text = mask_ids(
        unicodedata.normalize("NFKC", _storable(authorization_ref)), decode=False, glued=True
    )
    visible = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf"))
    text = mask_ids(visible.strip(), decode=False, glued=True)
    if len(text) > MAX_AUTHORIZATION_REF:
        # Refused as too long; the entry keeps its start and how much was cut.
        cut = len(text) - MAX_AUTHORIZATION_REF
        text = f"{text[:MAX_AUTHORIZATION_REF]}…[{cut} more characters]"
    return text


def _names_something(text: str) -> bool:
    return any(
        unicodedata.category(c)[0] in _VISIBLE_CATEGORIES and c not in _BLANK_LETTERS for c in text
    )


def _storable(text: str) -> str:
    # A lone surrogate has no UTF-8 form: the audit entry could not be hashed or stored.
    # It is kept as its backslash escape, so the entry still shows what was sent.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


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
        sent = kwargs.get("authorization_ref")
        reference = sent if isinstance(sent, str) and sent else None
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
            authorization_ref=audited_reference(reference),
            target=_storable(mask_target(raw)),
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
