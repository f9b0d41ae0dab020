"""The four date formats the departments use; every adapter reads its dates through these."""

from __future__ import annotations

import re
from datetime import date

from adapters.http import PayloadError


class MalformedDate(PayloadError):
    """A date field that is not in its department's format; the caller answers BAD_PAYLOAD."""


# departments/courts.md: 立案时间 regDate is `YYYYMMDD`, e.g. 20230301.
_COMPACT = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")
# departments/courts.md: 发布时间 publishDate is `YYYY年MM月DD日`, e.g. 2023年05月12日.
_CHINESE = re.compile(r"([0-9]{4})年([0-9]{2})月([0-9]{2})日")
# departments/market.md, tax.md and the courts' xgl resource: `YYYY-MM-DD`.
_ISO = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
# departments/water.md: dates in the CSV files are `YYYY/MM/DD`.
_SLASH = re.compile(r"([0-9]{4})/([0-9]{2})/([0-9]{2})")


def parse_compact(value: object, field: str) -> date | None:
    """Courts regDate `YYYYMMDD`; empty or null is None."""
    return _parse(_COMPACT, value, field)


def parse_chinese(value: object, field: str) -> date | None:
    """Courts publishDate `YYYY年MM月DD日`; empty or null is None."""
    return _parse(_CHINESE, value, field)


def parse_iso(value: object, field: str) -> date | None:
    """Market, tax and courts-xgl dates `YYYY-MM-DD`; empty or null is None."""
    return _parse(_ISO, value, field)


def parse_slash(value: object, field: str) -> date | None:
    """Water CSV dates `YYYY/MM/DD`; empty is None."""
    return _parse(_SLASH, value, field)


def _parse(pattern: re.Pattern[str], value: object, field: str) -> date | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedDate(f"{field} is not a date string")
    text = value.strip()
    if not text:
        return None
    # The patterns use [0-9], not \d: \d would also take full-width and other Unicode digits.
    match = pattern.fullmatch(text)
    if match is None:
        raise MalformedDate(f"{field} is not in the department's date format")
    year, month, day = (int(part) for part in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        raise MalformedDate(f"{field} is not a real calendar date") from None
