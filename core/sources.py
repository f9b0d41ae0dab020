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
    # The department's published rate cannot serve the lookup before its deadline: refused
    # at once rather than spending calls that would time out (the courts' 50/s).
    OVER_BUDGET = "OVER_BUDGET"


# What a client is told about a department that did not answer: fixed texts of ours. A
# department's own words (an error body, a SOAP fault, a file's content) may carry personal
# data, file paths or internals, so they stay in SourceError.message, for the log only.
PUBLIC_TEXT: dict[FailureKind, str] = {
    FailureKind.UNAVAILABLE: "the department could not be reached or answered with an error",
    FailureKind.TIMEOUT: "no answer within the timeout",
    FailureKind.RATE_LIMITED: "the department asked for fewer requests",
    FailureKind.BAD_PAYLOAD: "the department's answer could not be read",
    FailureKind.NOT_SYNCED: "no snapshot of the department's files yet",
    FailureKind.OVER_BUDGET: (
        "not asked: the department's request rate is taken until after the timeout"
    ),
}


# What a STALE source says (contract §6: a STALE source always has a message).
STAND_IN_TEXT = (
    "not answered now: the last good answer is shown, and it does not count as an answer of today"
)
SNAPSHOT_TEXT = "the latest sync failed: an earlier snapshot is served"


class SourceError(Exception):
    """A department's failure for the codes of one call; carried as a value per code."""

    def __init__(
        self,
        department: Department,
        kind: FailureKind,
        message: str,
        retry_after_s: float | None = None,
        open_since: datetime | None = None,
        last_failure: FailureKind | None = None,
    ) -> None:
        super().__init__(f"{department.value} {kind.value}: {message}")
        self.department = department
        self.kind = kind
        # For operators (logs): it may quote the department's own words. Never shown to a
        # client; `public_message` is.
        self.message = message
        self.retry_after_s = retry_after_s
        # Set when the department's circuit breaker refused the call without asking it,
        # with the kind of the failure that opened it last.
        self.open_since = open_since
        self.last_failure = last_failure

    @property
    def public_message(self) -> str:
        """What a client is told about this failure: a fixed text of ours."""
        if self.open_since is not None:
            since = self.open_since.isoformat(timespec="seconds")
            last = PUBLIC_TEXT[self.last_failure or self.kind]
            return f"circuit breaker open since {since}; last failure: {last}"
        return PUBLIC_TEXT[self.kind]
