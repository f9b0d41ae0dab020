"""`credit-gateway demo`: the sandbox and the gateway over it, with fresh demo API keys."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import uvicorn

from gateway.app import create_app
from gateway.clock import Clock
from gateway.config import load_config
from sandbox.generator import generate
from sandbox.runner import SandboxServers

DEMO_CLIENTS: tuple[tuple[str, str, list[str]], ...] = (
    ("partner-demo", "partner", []),
    ("bank-demo", "bank", ["CREDIT_LOAN"]),
    ("regulator-demo", "regulator", ["ADMINISTRATIVE_REVIEW", "SUPERVISION", "JUDICIAL"]),
)
# Labels of the generated dataset worth showing first.
SAMPLE_LABELS = (
    "stitched.all_departments",
    "clean.with_grade_a",
    "dishonest.both_forms",
    "serious_illegal.active",
    "abnormal.active",
    "tax.several_years",
    "water.grade_cancelled",
    "uscc.letter_n2",
    "person.relocation",
)


async def run_demo(seed: int, subjects: int, host: str, port: int, directory: str) -> None:
    """Generate the dataset, start the four departments, write the config, serve the gateway."""
    clock = Clock.from_env()
    dataset = generate(seed, subjects, clock.today())
    servers = await SandboxServers.start(dataset, host="127.0.0.1")
    try:
        keys = {client_id: secrets.token_urlsafe(24) for client_id, _, _ in DEMO_CLIENTS}
        config_path = write_demo_config(Path(directory), servers.urls, keys)
        app = create_app(load_config(config_path), clock)
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info"))
        _banner(f"http://{host}:{port}/graphql", config_path, keys, dataset.examples, servers.urls)
        await server.serve()
    finally:
        await servers.stop()


def write_demo_config(directory: Path, urls: dict[str, str], keys: dict[str, str]) -> Path:
    """A config in contract §6 format; only the keys' SHA-256 is written, never the keys."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, url in urls.items():
        lines += [f"[sources.{name}]", f"url = {json.dumps(url)}", ""]
    audit = (directory / "audit.db").resolve()
    lines += ["[audit]", f"url = {json.dumps(f'sqlite://{audit}')}", ""]
    for client_id, role, purposes in DEMO_CLIENTS:
        digest = hashlib.sha256(keys[client_id].encode()).hexdigest()
        lines += [
            "[[clients]]",
            f"id = {json.dumps(client_id)}",
            f"role = {json.dumps(role)}",
            f"key_sha256 = {json.dumps(digest)}",
            f"purposes = {json.dumps(purposes)}",
            "",
        ]
    path = directory / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _banner(
    url: str,
    config_path: Path,
    keys: dict[str, str],
    examples: dict[str, str],
    department_urls: dict[str, str],
) -> None:
    print("\n=== credit-gateway demo ===")
    print(f"GraphiQL:  {url}")
    print(f"config:    {config_path}")
    for name, department_url in department_urls.items():
        print(f"sandbox {name:<7} {department_url}")
    print("\nDemo API keys (shown once; only their SHA-256 is in the config):")
    for client_id, key in keys.items():
        print(f"  {client_id:<15} Authorization: Bearer {key}")
    print("\nSample identities:")
    for label in SAMPLE_LABELS:
        if label in examples:
            print(f"  {label:<24} {examples[label]}")
    print(flush=True)
