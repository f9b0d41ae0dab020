"""The gateway's notion of today: China Standard Time, pinned by CREDIT_GATEWAY_TODAY."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta, timezone

CST = timezone(timedelta(hours=8), name="CST")
TODAY_ENV = "CREDIT_GATEWAY_TODAY"


class Clock:
    """Used wherever a date decides something; a pinned day keeps the time of day real."""

    def __init__(self, pinned_today: date | None = None) -> None:
        self._pinned = pinned_today

    @classmethod
    def from_env(cls) -> Clock:
        """Read CREDIT_GATEWAY_TODAY once, at start; a malformed value stops the start."""
        raw = os.environ.get(TODAY_ENV, "").strip()
        if not raw:
            return cls()
        try:
            return cls(date.fromisoformat(raw))
        except ValueError as exc:
            raise ValueError(f"{TODAY_ENV} must be YYYY-MM-DD, got {raw!r}") from exc

    @property
    def pinned(self) -> bool:
        """True when today is pinned (tests, reproducing a past determination)."""
        return self._pinned is not None

    def now(self) -> datetime:
        """Current instant in CST; on a pinned clock, the pinned day at the real time of day."""
        real = datetime.now(CST)
        if self._pinned is None:
            return real
        return datetime.combine(self._pinned, real.timetz())

    def today(self) -> date:
        """Calendar date in CST (contract §2)."""
        return self._pinned if self._pinned is not None else datetime.now(CST).date()
