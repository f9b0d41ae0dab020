"""The `credit-gateway` command, run as a real process."""

from __future__ import annotations

from pathlib import Path

from schema import build_schema
from tests.cli import run_cli


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
