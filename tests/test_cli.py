"""The `credit-gateway` command, run as a real process."""

from __future__ import annotations

from pathlib import Path

import pytest

from schema import build_schema
from tests.cli import UNUSED_URLS, run_cli


def test_schema_prints_the_sdl() -> None:
    result = run_cli("schema")
    assert result.returncode == 0
    assert result.stdout.strip() == build_schema().as_str().strip()


def test_serve_with_a_bad_config_exits_with_a_message(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[sources.courts]\nurl = "http://127.0.0.1:9"\n', encoding="utf-8")
    result = run_cli("serve", "--config", str(config))
    assert result.returncode == 2
    assert "lacks market, tax, water" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("courts_line", "named"),
    [
        ("cache_ttl = 0", "[sources.courts] cache_ttl (did you mean cache_ttl_s?)"),
        ("timeot_s = 3", "[sources.courts] timeot_s (did you mean timeout_s?)"),
        ("retries = -1", "[sources.courts] retries must be a whole number >= 0"),
    ],
)
@pytest.mark.parametrize("command", [("serve", "--port", "9"), ("audit", "verify")])
def test_a_bad_source_knob_stops_the_command_naming_table_and_key(
    tmp_path: Path, courts_line: str, named: str, command: tuple[str, ...]
) -> None:
    config = tmp_path / "config.toml"
    lines = []
    for name, url in UNUSED_URLS.items():
        lines += [f"[sources.{name}]", f'url = "{url}"']
        if name == "courts":
            lines.append(courts_line)
    lines += ["[audit]", f'url = "sqlite://{tmp_path}/audit.db"']
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_cli(*command, "--config", str(config))
    assert result.returncode == 2, result.stdout + result.stderr
    assert named in result.stderr
    assert "Traceback" not in result.stderr
