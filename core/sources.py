"""Source states: how a department stands, and its typed failures (never crashed queries)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from core.records import Department


class SourceState(enum.StrEnum):
    """Health of a source as the contract names it."""

    OK = "OK"
    STALE = "STALE"
    UNAVAILABLE = "UNAVAILABLE"


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """State of one department: for the sources query and per subject."""

    department: Department
    state: SourceState
    as_of: datetime | None
    message: str | None = None


class FailureKind(enum.StrEnum):
    """Why a department could not answer."""

    UNAVAILABLE = "UNAVAILABLE"  # connection refused, 5xx, maintenance page
    TIMEOUT = "TIMEOUT"  # no answer within the configured timeout
    RATE_LIMITED = "RATE_LIMITED"  # 429 from the department
    BAD_PAYLOAD = "BAD_PAYLOAD"  # an answer we cannot trust (garbage, DTD, fhdm error …)
    NOT_SYNCED = "NOT_SYNCED"  # a file source with no snapshot yet


class SourceError(Exception):
    """A department's failure for the codes of one call; carried as a value per code."""

    def __init__(
        self,
        department: Department,
        kind: FailureKind,
        message: str,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(f"{department.value} {kind.value}: {message}")
        self.department = department
        self.kind = kind
        self.message = message
        self.retry_after_s = retry_after_s
