"""Finds full citizen ID numbers in text: every non-regulator response body is scanned."""

from __future__ import annotations

import re
from datetime import date

from stdnum.iso7064 import mod_11_2

# 18 characters standing alone: 17 digits and a digit or X (contract §1), not part of a
# longer run of code characters (a USCC, a record id).
_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")


def full_id_numbers(text: str) -> list[str]:
    """Every substring of text that is a valid, unmasked citizen ID number."""
    return [m for m in _CANDIDATE.findall(text) if _is_id(m.upper())]


def _is_id(number: str) -> bool:
    if not mod_11_2.is_valid(number):
        return False
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return born.year >= 1900 and number[0] in "12345678"
