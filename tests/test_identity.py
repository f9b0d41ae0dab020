"""Identity rules of contract §1, checked on real codes and on generated ones (hypothesis)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.identity import (
    USCC_ALPHABET,
    InvalidIdentity,
    id_check_digit,
    normalize_id_number,
    normalize_uscc,
    org_code_check_digit,
    org_code_of,
    uscc_check_digit,
)
from core.masking import mask_id_number

TODAY = date(2026, 5, 20)
# Published codes of real organisations: an oracle independent of our own arithmetic.
REAL_USCCS = ["91110000600037341L", "91440300708461136T", "91350100M000100Y43"]


def _uscc(prefix: str, region: str, body: str) -> str:
    head = prefix + region + body + org_code_check_digit(body)
    return head + uscc_check_digit(head)


uscc_chars = st.sampled_from(USCC_ALPHABET)
usccs = st.builds(
    _uscc,
    st.text(uscc_chars, min_size=2, max_size=2),
    st.text(st.sampled_from("0123456789"), min_size=6, max_size=6),
    st.text(uscc_chars, min_size=8, max_size=8),
)


def _id_number(region: str, born: date, sequence: int) -> str:
    head = f"{region}{born:%Y%m%d}{sequence:03d}"
    return head + id_check_digit(head)


id_numbers = st.builds(
    _id_number,
    st.sampled_from(["610802", "230102", "620521", "410481", "511902", "810000", "830000"]),
    st.dates(date(1930, 1, 1), TODAY),
    st.integers(0, 999),
)


@pytest.mark.parametrize("code", REAL_USCCS)
def test_real_codes_are_valid(code: str) -> None:
    assert normalize_uscc(code) == code


def test_documented_example_and_its_organisation_code() -> None:
    assert org_code_of(normalize_uscc("91610800MA703XY29Q")) == "MA703XY29"


@given(usccs)
def test_generated_codes_are_valid_trimmed_and_upper_cased(code: str) -> None:
    assert normalize_uscc(f"  {code.lower()}\t") == code


@pytest.mark.parametrize("prefix", ["N2", "Y1", "A1", "51"])
def test_letters_are_legal_in_the_first_two_characters(prefix: str) -> None:
    code = _uscc(prefix, "610802", "MA703XY2")
    assert normalize_uscc(code) == code


@given(usccs, st.integers(0, 17), uscc_chars)
def test_any_single_substitution_is_rejected(code: str, position: int, char: str) -> None:
    changed = code[:position] + char + code[position + 1 :]
    if changed != code:
        with pytest.raises(InvalidIdentity) as caught:
            normalize_uscc(changed)
        assert caught.value.code == "INVALID_USCC"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "91610800MA703XY29",  # 17 characters
        "91610800MA703XY29QQ",
        "91610A00MA703XY29Q",  # letter in the region code
        "91610800MA703XY2IQ",  # I is not in the alphabet
        "91610800MA703XY28Q",  # organisation check digit wrong
        "91610800MA703XY29R",  # mod-31 check digit wrong
        "９1610800MA703XY29Q",  # full-width digit
    ],
)
def test_malformed_codes_are_invalid_uscc(raw: str) -> None:
    with pytest.raises(InvalidIdentity) as caught:
        normalize_uscc(raw)
    assert caught.value.code == "INVALID_USCC"


@given(id_numbers)
def test_generated_id_numbers_are_valid(number: str) -> None:
    assert normalize_id_number(f" {number.lower()} ", TODAY) == number


@given(id_numbers, st.integers(0, 17), st.sampled_from("0123456789X"))
def test_any_single_id_substitution_is_rejected(number: str, position: int, char: str) -> None:
    changed = number[:position] + char + number[position + 1 :]
    if changed != number:
        with pytest.raises(InvalidIdentity) as caught:
            normalize_id_number(changed, TODAY)
        assert caught.value.code == "INVALID_ID_NUMBER"


@pytest.mark.parametrize(
    "raw", ["", "61080219800101002", "6108021980010100211", "６１０８０２198001010021"]
)
def test_malformed_id_numbers_are_invalid(raw: str) -> None:
    with pytest.raises(InvalidIdentity) as caught:
        normalize_id_number(raw, TODAY)
    assert caught.value.code == "INVALID_ID_NUMBER"


def test_residence_permits_are_valid_ids() -> None:
    for prefix in ("810000", "820000", "830000"):
        number = _id_number(prefix, date(1990, 7, 1), 12)
        assert normalize_id_number(number, TODAY) == number


def test_lower_case_x_is_accepted() -> None:
    number = next(
        _id_number("610802", date(1980, 1, 1), n)
        for n in range(1000)
        if _id_number("610802", date(1980, 1, 1), n).endswith("X")
    )
    assert normalize_id_number(number.lower(), TODAY) == number


@pytest.mark.parametrize(
    "head",
    [
        "61080219800230123",  # 30 February
        "61080219801301123",  # month 13
    ],
)
def test_birth_date_must_be_real(head: str) -> None:
    with pytest.raises(InvalidIdentity, match="birth date"):
        normalize_id_number(head + id_check_digit(head), TODAY)


def test_birth_date_must_not_be_in_the_future() -> None:
    tomorrow = _id_number("610802", TODAY + timedelta(days=1), 1)
    with pytest.raises(InvalidIdentity, match="future"):
        normalize_id_number(tomorrow, TODAY)
    assert normalize_id_number(_id_number("610802", TODAY, 1), TODAY)


def test_mask_keeps_six_and_four() -> None:
    assert mask_id_number("610802198001010021") == "610802********0021"
