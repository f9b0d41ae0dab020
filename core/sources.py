"""Typed failures of a department; they become source states, never crashed queries."""

from __future__ import annotations

import enum

from adapters.records import Department


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
