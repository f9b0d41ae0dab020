"""Identity rules of contract §1: USCC (GB 32100), organisation code (GB 11714), citizen ID."""

from __future__ import annotations

import re
from datetime import date

from stdnum.cn import uscc as stdnum_uscc
from stdnum.iso7064 import mod_11_2

from core.errors import ErrorCode

# GB 32100 alphabet: digits and upper-case letters without I, O, S, V, Z.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_GB11714_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
RESIDENCE_PERMIT_PREFIXES = ("810000", "820000", "830000")
# ASCII only: str.isdigit() would also take full-width and other Unicode digits.
_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
_REGION_SHAPE = re.compile(r"[0-9]{6}")


class InvalidIdentity(ValueError):
    """An identity that fails contract §1; `code` is the contract error code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def org_code_check_digit(body: str) -> str:
    """GB 11714 check character for the 8-character body of an organisation code."""
    total = sum(_char_value(c) * w for c, w in zip(body, _GB11714_WEIGHTS, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def uscc_check_digit(first17: str) -> str:
    """GB 32100 mod-31 check character for the first 17 characters of a USCC."""
    return str(stdnum_uscc.calc_check_digit(first17))


def normalize_uscc(raw: str) -> str:
    """Trimmed, upper-cased and validated USCC; raises InvalidIdentity(INVALID_USCC)."""
    code = raw.strip().upper()
    if len(code) != 18:
        raise InvalidIdentity(ErrorCode.INVALID_USCC, "a USCC has 18 characters")
    if any(c not in USCC_ALPHABET for c in code):
        raise InvalidIdentity(
            ErrorCode.INVALID_USCC, "a USCC uses digits and letters except I O S V Z"
        )
    if not _REGION_SHAPE.fullmatch(code[2:8]):
        raise InvalidIdentity(
            ErrorCode.INVALID_USCC, "USCC characters 3-8 are a region code of digits"
        )
    if code[16] != org_code_check_digit(code[8:16]):
        raise InvalidIdentity(
            ErrorCode.INVALID_USCC, "the organisation code check digit does not hold"
        )
    if code[17] != uscc_check_digit(code[:17]):
        raise InvalidIdentity(ErrorCode.INVALID_USCC, "the USCC check digit does not hold")
    return code


def is_valid_uscc(raw: str) -> bool:
    """True when raw passes contract §1 for a USCC."""
    try:
        normalize_uscc(raw)
    except InvalidIdentity:
        return False
    return True


def org_code_of(uscc: str) -> str:
    """The 9-character organisation code embedded in a USCC (characters 9-17)."""
    return uscc[8:17]


def normalize_id_number(raw: str, today: date) -> str:
    """Trimmed citizen ID with an upper-case X; raises InvalidIdentity(INVALID_ID_NUMBER)."""
    number = raw.strip().upper()
    if not _ID_SHAPE.fullmatch(number):
        raise InvalidIdentity(
            ErrorCode.INVALID_ID_NUMBER, "an ID number has 17 digits and a digit or X"
        )
    if not mod_11_2.is_valid(number):
        raise InvalidIdentity(
            ErrorCode.INVALID_ID_NUMBER, "the ID number check digit does not hold"
        )
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidIdentity(
            ErrorCode.INVALID_ID_NUMBER, "the ID number has no real birth date"
        ) from None
    if born > today:
        raise InvalidIdentity(
            ErrorCode.INVALID_ID_NUMBER, "the ID number's birth date is in the future"
        )
    return number


def id_check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character for the first 17 digits of a citizen ID."""
    return str(mod_11_2.calc_check_digit(first17))


def mask_id_number(number: str) -> str:
    """First 6 and last 4 kept, the 8 between starred: 610802********0021."""
    return number[:6] + "*" * 8 + number[-4:]


def _char_value(c: str) -> int:
    return int(c) if c.isdigit() else ord(c) - ord("A") + 10
