"""`searchSubjects`: substring search with cursor pagination."""

from __future__ import annotations

from sandbox.model import Dataset
from tests.servers import GraphQLClient

SEARCH = """
query($name: String!, $first: Int, $after: String) {
  searchSubjects(name: $name, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { cursor node { uscc name } }
  }
}"""


def test_pages_cover_every_match_once(client: GraphQLClient, dataset: Dataset) -> None:
    text = "榆林"
    expected = {c.uscc for c in dataset.companies if text in c.name}
    assert len(expected) > 5
    seen: list[str] = []
    after = None
    while True:
        body = client.query(SEARCH, {"name": text, "first": 4, "after": after})
        page = body["data"]["searchSubjects"]
        assert page["totalCount"] == len(expected)
        seen += [e["node"]["uscc"] for e in page["edges"]]
        assert all(text in e["node"]["name"] for e in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == sorted(expected)


def test_no_match_is_an_empty_page(client: GraphQLClient) -> None:
    page = client.query(SEARCH, {"name": "不存在的公司名称"})["data"]["searchSubjects"]
    assert page == {
        "totalCount": 0,
        "pageInfo": {"hasNextPage": False, "endCursor": None},
        "edges": [],
    }


def test_bad_cursor_and_bad_first_are_coded_errors(client: GraphQLClient) -> None:
    body = client.query(SEARCH, {"name": "公司", "after": "not-a-cursor"})
    assert body["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"
    body = client.query(SEARCH, {"name": "公司", "first": 0})
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT"
