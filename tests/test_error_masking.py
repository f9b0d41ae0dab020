"""Errors that describe the request are the caller's: shown as they are, not logged (D15).

Syntax, validation and variable-coercion errors are raised before any resolver runs and
tell the caller what to fix; only unexpected errors raised while resolving are faults of
ours, masked as "Internal error." and logged at ERROR.
"""

from __future__ import annotations

import logging

import pytest
from graphql import GraphQLError
from stdnum.iso7064 import mod_11_2

from core.errors import ErrorCode, GatewayError
from schema.errors import should_mask
from tests.servers import KEYS, GraphQLClient

SEARCH = 'query($first: Int) { searchSubjects(name: "a", first: $first) { totalCount } }'


def _server_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def _id_number() -> str:
    # A valid citizen ID (no final X), so that the gateway's masking recognises it.
    bodies = (f"61080219900101{serial:03d}" for serial in range(1000))
    return next(b + d for b in bodies if (d := mod_11_2.calc_check_digit(b)) != "X")


def test_a_variable_of_the_wrong_type_is_shown_and_not_logged(
    client: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        body = client.query(SEARCH, {"first": "abc"})
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["message"] == (
        "Variable '$first' has invalid value: Int cannot represent non-integer value: 'abc'"
    )
    assert _server_errors(caplog) == []
    # The same query with a good value still answers.
    assert client.query(SEARCH, {"first": 1})["data"]["searchSubjects"]["totalCount"] >= 0


def test_a_variable_error_quoting_an_id_number_is_masked_for_all_but_regulators(
    client: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    id_number = _id_number()
    masked = id_number[:6] + "*" * 8 + id_number[-4:]
    with caplog.at_level(logging.INFO):
        # GraphQLClient fails the test if a full ID number reaches a non-regulator.
        public = client.query(SEARCH, {"first": id_number})
        bank = client.query(SEARCH, {"first": id_number}, key=KEYS["bank"])
        regulator = client.query(SEARCH, {"first": id_number}, key=KEYS["regulator"])
    for body in (public, bank):
        assert masked in body["errors"][0]["message"], body
    assert id_number in regulator["errors"][0]["message"], regulator
    assert _server_errors(caplog) == []


def test_syntax_and_validation_errors_are_shown_and_not_logged(
    client: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        syntax = client.query("{ measures { code }")
        unknown = client.query("{ measures { colour } }")
        literal = client.query('{ searchSubjects(name: "a", first: "abc") { totalCount } }')
    assert syntax["errors"][0]["message"] == "Syntax Error: Expected Name, found <EOF>."
    assert unknown["errors"][0]["message"] == "Cannot query field 'colour' on type 'Measure'."
    assert "Int cannot represent non-integer value" in literal["errors"][0]["message"]
    assert _server_errors(caplog) == []


def test_only_errors_raised_while_resolving_or_by_our_code_are_masked() -> None:
    # graphql-core's errors about the request, as MaskErrors and the logging see them.
    syntax = GraphQLError("Syntax Error: Expected Name, found <EOF>.")
    coercion = GraphQLError(
        "Variable '$first' has invalid value: Int cannot represent non-integer value: 'abc'",
        original_error=GraphQLError("Int cannot represent non-integer value: 'abc'"),
    )
    coded = GraphQLError(
        "no", path=["person"], original_error=GatewayError(ErrorCode.FORBIDDEN, "no")
    )
    assert not any(should_mask(e) for e in (syntax, coercion, coded))
    # A resolver's fault has a path; an extension's fault has our exception as its cause.
    resolving = GraphQLError("boom", path=["subject"], original_error=KeyError("boom"))
    non_null = GraphQLError(
        "Cannot return null for non-nullable field Subject.name.",
        path=["subject", "name"],
        original_error=GraphQLError("Cannot return null for non-nullable field Subject.name."),
    )
    extension = GraphQLError("boom", original_error=RuntimeError("boom"))
    assert all(should_mask(e) for e in (resolving, non_null, extension))
