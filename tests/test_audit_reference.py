"""What a bank's authorizationRef must be, and how its audit entry keeps it (docs/privacy.md).

Over real HTTP with the suite's gateway factories; every entry is read back through
auditLog, whose answer is scanned for full ID numbers. The request boundary
(schema/text.py) refuses control and format characters and text over 256 characters
before any resolver runs; the person guard bounds and normalises what gets past it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from tests.servers import GraphQLClient
from tests.test_person_audit import Audited, _call, _code, _entries, _masked, _start

MAX_REF = 128
_FORMAT = ("Cc", "Cf")


@pytest.fixture
def audited(sandbox: SandboxThread, tmp_path: Path) -> Iterator[Audited]:
    """A fresh gateway whose audit log starts empty (as in tests/test_person_audit.py)."""
    path = tmp_path / "audit.db"
    server = _start(sandbox, path)
    yield Audited(GraphQLClient(server.url), path)
    server.stop()


def _wide(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)


@pytest.mark.parametrize(
    "template",
    [
        "授权书{id}号",
        "AUTH {id}",
        "auth:{id}",
        "LOAN-{id}-2026",
        "{id}",
        "AUTH-{wide}",
        "AUTH{id}",
        "{id}99",
    ],
)
def test_id_numbers_inside_the_reference_are_masked_in_the_log(
    audited: Audited, dataset: Dataset, template: str
) -> None:
    person = dataset.examples["person.restricted"]
    borrower = dataset.examples["person.multi_company"]
    ref = template.format(id=borrower, wide=_wide(borrower))
    body = _call(audited.client, person, "CREDIT_LOAN", ref, "bank")
    assert _code(body) is None, body
    # _entries fails on any full ID number in the regulator's view of the log.
    (entry,) = _entries(audited.client)
    assert _masked(borrower) in entry["authorizationRef"]
    assert borrower not in entry["authorizationRef"]


def test_a_number_split_by_invisible_characters_never_reaches_the_log_in_clear(
    audited: Audited, dataset: Dataset
) -> None:
    person = dataset.examples["person.restricted"]
    borrower = dataset.examples["person.multi_company"]
    split = "AUTH-" + borrower[:6] + "\u200b" + borrower[6:12] + "\u2060" + borrower[12:]
    glued = "1101\u200b" + borrower  # dropping the space would glue 22 digits together
    for ref in (split, glued):
        body = _call(audited.client, person, "CREDIT_LOAN", ref, "bank")
        # Refused at the boundary (format characters), or logged with the number masked.
        assert _code(body) in (None, "INVALID_ARGUMENT"), body
    for entry in _entries(audited.client):
        shown = "".join(
            c for c in entry["authorizationRef"] if unicodedata.category(c) not in _FORMAT
        )
        assert borrower not in shown and _masked(borrower) in shown


def test_a_reference_longer_than_128_characters_is_refused_and_logged_bounded(
    audited: Audited, dataset: Dataset
) -> None:
    person = dataset.examples["person.restricted"]
    at_limit = "R" * MAX_REF
    assert _code(_call(audited.client, person, "CREDIT_LOAN", at_limit, "bank")) is None
    for length in (MAX_REF + 1, 256):
        body = _call(audited.client, person, "CREDIT_LOAN", "R" * length, "bank")
        assert body["data"]["person"] is None
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "INVALID_ARGUMENT"
        assert error["message"] == (
            f"authorizationRef must be at most {MAX_REF} characters, not {length}"
        )
    first, *refused = reversed(_entries(audited.client))
    assert (first["outcome"], first["authorizationRef"]) == ("GRANTED", at_limit)
    assert [(e["outcome"], e["reason"]) for e in refused] == [("DENIED", "INVALID_ARGUMENT")] * 2
    assert [e["authorizationRef"] for e in refused] == [
        f"{'R' * MAX_REF}…[1 more characters]",
        f"{'R' * MAX_REF}…[{256 - MAX_REF} more characters]",
    ]


def test_a_megabyte_reference_is_refused_and_never_stored_whole(
    audited: Audited, dataset: Dataset
) -> None:
    person = dataset.examples["person.restricted"]
    for _ in range(3):
        body = _call(audited.client, person, "CREDIT_LOAN", "R" * 1_000_000, "bank")
        assert body["data"] is None or body["data"]["person"] is None
        assert _code(body) == "INVALID_ARGUMENT"
    for entry in _entries(audited.client):
        assert (entry["outcome"], entry["reason"]) == ("DENIED", "INVALID_ARGUMENT")
        assert len(entry["authorizationRef"]) <= MAX_REF + 40
    # Megabytes sent are not megabytes stored: the disk cannot be filled this way.
    assert _store_bytes(audited.path) < 200_000


def _store_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


@pytest.mark.parametrize(
    "ref",
    [
        "\u3164",  # Hangul filler: a letter that shows nothing
        "\u115f\u1160",  # Hangul choseong and jungseong fillers
        "\u2800",  # the blank Braille pattern
        "\u0301",  # a combining accent on nothing
        "\u3000\u3164 ",  # ideographic space around a filler
    ],
    ids=repr,
)
def test_an_invisible_reference_is_no_reference(
    audited: Audited, dataset: Dataset, ref: str
) -> None:
    person = dataset.examples["person.restricted"]
    body = _call(audited.client, person, "CREDIT_LOAN", ref, "bank")
    assert _code(body) == "AUTHORIZATION_REQUIRED", body
    assert body["data"]["person"] is None
    (entry,) = _entries(audited.client)
    assert (entry["outcome"], entry["reason"]) == ("DENIED", "AUTHORIZATION_REQUIRED")


@pytest.mark.parametrize(
    "ref",
    [
        "\u200b",  # zero-width space
        " \u200b ",
        "\u2060",  # word joiner
        "\ufeff",  # byte order mark
        "\u200e\u200f",  # direction marks
        "\u00ad",  # soft hyphen
    ],
    ids=repr,
)
def test_format_characters_never_pass_as_a_reference(
    audited: Audited, dataset: Dataset, ref: str
) -> None:
    person = dataset.examples["person.restricted"]
    body = _call(audited.client, person, "CREDIT_LOAN", ref, "bank")
    # The guard answers AUTHORIZATION_REQUIRED; the request boundary, which refuses format
    # characters in any argument, INVALID_ARGUMENT before the guard is reached.
    assert _code(body) in ("AUTHORIZATION_REQUIRED", "INVALID_ARGUMENT"), body
    assert body["data"] is None or body["data"]["person"] is None
    assert all(e["outcome"] == "DENIED" for e in _entries(audited.client))
