"""`credit-gateway schema --check FILE`, the contract check offered to partners, as a process."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import build_schema

from schema import build_schema as build_gateway_schema
from schema.compatibility import breaking_changes
from tests.cli import ROOT, run_cli

SNAPSHOT = ROOT / "schema" / "schema.graphql"


def _sdl_file(tmp_path: Path, old: str, new: str) -> Path:
    """The committed served SDL with one edit, as a partner's contract file."""
    served = SNAPSHOT.read_text(encoding="utf-8")
    assert served.count(old) == 1, f"{old!r} is not in schema/schema.graphql exactly once"
    path = tmp_path / "contract.graphql"
    path.write_text(served.replace(old, new), encoding="utf-8")
    return path


def test_the_served_schema_keeps_its_own_sdl() -> None:
    result = run_cli("schema", "--check", "schema/schema.graphql")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "keeps" in result.stdout


def test_a_field_the_server_lacks_is_named(tmp_path: Path) -> None:
    contract = _sdl_file(
        tmp_path, "type Query {\n", "type Query {\n  creditScore(uscc: String!): Int\n"
    )
    result = run_cli("schema", "--check", str(contract))
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["FIELD_REMOVED: Field Query.creditScore was removed."]


def test_a_changed_argument_default_is_named(tmp_path: Path) -> None:
    contract = _sdl_file(
        tmp_path,
        "searchSubjects(name: String!, first: Int = 20,",
        "searchSubjects(name: String!, first: Int = 50,",
    )
    result = run_cli("schema", "--check", str(contract))
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("ARG_DEFAULT_VALUE_CHANGE:")
    assert "Query.searchSubjects(first:)" in line


def test_the_contract_copy_lists_exactly_what_is_not_served() -> None:
    # Today the parts added to the contract on 2026-11-30 (tests/test_schema.py NOT_YET_SERVED).
    expected = [
        str(change)
        for change in breaking_changes(
            (ROOT / "docs" / "contract" / "schema.graphql").read_text(encoding="utf-8"),
            build_schema(build_gateway_schema().as_str()),
        )
    ]
    result = run_cli("schema", "--check", "docs/contract/schema.graphql")
    assert result.returncode == (1 if expected else 0)
    assert result.stderr.splitlines() == expected


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.graphql", None, "cannot read"),
        ("empty.graphql", b"", "is not a valid GraphQL schema: Syntax Error"),
        ("syntax.graphql", b"type Query { a: }\n", "is not a valid GraphQL schema: Syntax Error"),
        ("unknown.graphql", b"type Query { a: Foo }\n", "Unknown type 'Foo'"),
        ("latin1.graphql", "type Query { née: Int }\n".encode("latin-1"), "cannot read"),
    ],
)
def test_an_unusable_file_exits_2_with_a_message(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    result = run_cli("schema", "--check", str(path))
    assert result.returncode == 2
    assert message in result.stderr
    assert str(path) in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_directory_exits_2_with_a_message(tmp_path: Path) -> None:
    result = run_cli("schema", "--check", str(tmp_path))
    assert result.returncode == 2
    assert "cannot read" in result.stderr
    assert "Traceback" not in result.stderr
