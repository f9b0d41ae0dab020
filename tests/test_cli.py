"""The `credit-gateway` command, run as a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from schema import build_schema

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_schema_prints_the_sdl() -> None:
    result = _run("schema")
    assert result.returncode == 0
    assert result.stdout.strip() == build_schema().as_str().strip()


def test_serve_with_a_bad_config_exits_with_a_message(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[sources.courts]\nurl = "http://127.0.0.1:9"\n', encoding="utf-8")
    result = _run("serve", "--config", str(config))
    assert result.returncode == 2
    assert "lacks market, tax, water" in result.stderr
    assert "Traceback" not in result.stderr
