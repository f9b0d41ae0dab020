"""The `credit-gateway` command as a real process, and config files as operators write them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Nothing is contacted by the commands that only read a config (audit verify, bad configs).
UNUSED_URLS = {
    name: f"http://127.0.0.1:{port}"
    for port, name in enumerate(("courts", "market", "tax", "water"), start=9101)
}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m gateway.cli ARGS` from the repository root, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def write_config(
    path: Path, audit_url: str, urls: Mapping[str, str] = UNUSED_URLS, extra: str = ""
) -> Path:
    """A TOML config per docs/configuration.md: sources, [audit] and any extra tables."""
    lines = []
    for name, url in urls.items():
        lines += [f"[sources.{name}]", f'url = "{url}"', ""]
    lines += ["[audit]", f'url = "{audit_url}"', "", extra]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
