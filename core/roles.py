"""Who may ask what (contract §5): caller roles, purposes of a personal query, the caller."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    """Caller roles of contract §5, from least to most trusted."""

    PUBLIC = "public"
    PARTNER = "partner"
    BANK = "bank"
    REGULATOR = "regulator"


class QueryPurpose(enum.StrEnum):
    """Why a caller asks for a person; a client may only use the purposes it is configured for."""

    CREDIT_LOAN = "CREDIT_LOAN"
    ADMINISTRATIVE_REVIEW = "ADMINISTRATIVE_REVIEW"
    SUPERVISION = "SUPERVISION"
    JUDICIAL = "JUDICIAL"


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated client of one request; anonymous callers get the public role."""

    client_id: str
    role: Role
    purposes: tuple[str, ...] = ()

    @property
    def is_regulator(self) -> bool:
        """True for the regulator role (full ID numbers, inactive and repaired records)."""
        return self.role is Role.REGULATOR


ANONYMOUS = Caller("anonymous", Role.PUBLIC)
