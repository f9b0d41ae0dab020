"""Cursors a caller sends back: anything we did not hand out is INVALID_CURSOR, never a 500."""

from __future__ import annotations

import base64

import pytest

from tests.servers import KEYS, GraphQLClient

AUDIT_LOG = "query($after: String) { auditLog(first: 5, after: $after) { edges { cursor } } }"
SEARCH = """query($after: String) {
  searchSubjects(name: "公司", first: 2, after: $after) { edges { cursor } } }"""


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


# A huge number overflowed the audit store's integers ("Internal error."); a superscript
# digit passes str.isdigit() but is no position.
FORGED = [_cursor("a:" + "9" * 100), _cursor("a:" + "9" * 19), _cursor("a:²"), _cursor("a:-1")]


@pytest.mark.parametrize("after", FORGED)
def test_a_forged_audit_cursor_is_invalid_cursor(client: GraphQLClient, after: str) -> None:
    body = client.query(AUDIT_LOG, {"after": after}, key=KEYS["regulator"])
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_CURSOR"]


@pytest.mark.parametrize("text", ["o:" + "9" * 100, "o:" + "9" * 19, "o:²"])
def test_a_forged_search_cursor_is_invalid_cursor(client: GraphQLClient, text: str) -> None:
    body = client.query(SEARCH, {"after": _cursor(text)})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_CURSOR"]


def test_a_cursor_handed_out_still_pages(client: GraphQLClient) -> None:
    first = client.query(SEARCH, {"after": None})["data"]["searchSubjects"]["edges"]
    after = first[-1]["cursor"]
    body = client.query(SEARCH, {"after": after})
    assert "errors" not in body
    assert body["data"]["searchSubjects"]["edges"][0]["cursor"] != after
