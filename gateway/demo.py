"""`credit-gateway demo`: the sandbox and the gateway over it, with fresh demo API keys."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path

import uvicorn

from core.clock import Clock
from gateway.app import create_app
from gateway.config import load_config
from gateway.listener import claim_port
from gateway.server import uvicorn_config
from sandbox.generator import generate
from sandbox.runner import SandboxServers

DEMO_CLIENTS: tuple[tuple[str, str, list[str]], ...] = (
    ("partner-demo", "partner", []),
    ("bank-demo", "bank", ["CREDIT_LOAN"]),
    ("regulator-demo", "regulator", ["ADMINISTRATIVE_REVIEW", "SUPERVISION", "JUDICIAL"]),
)
# Labels of the generated dataset worth showing first; every one the README's tour names
# is here (tests/test_demo.py checks that).
SAMPLE_LABELS = (
    "stitched.all_departments",
    "clean.with_grade_a",
    "clean.plain",
    "dishonest.both_forms",
    "serious_illegal.active",
    "serious_illegal.expired",
    "abnormal.active",
    "tax.several_years",
    "water.grade_cancelled",
    "uscc.letter_n2",
    "person.relocation",
)
# Where examples/webhook_receiver.py listens: the one webhook address the demo allows.
DEMO_WEBHOOKS = "http://127.0.0.1:8080/"
# The subject GraphiQL's example query opens with.
EXAMPLE_LABEL = "stitched.all_departments"


async def run_demo(seed: int, subjects: int, host: str, port: int, directory: str) -> None:
    """Claim the port, generate the dataset, start the departments, serve the gateway."""
    # The port first: a taken port must stop the demo before a key is made or shown.
    listener = claim_port(host, port)
    try:
        clock = Clock.from_env()
        dataset = generate(seed, subjects, clock.today())
        servers = await SandboxServers.start(dataset, host="127.0.0.1")
        try:
            keys = {client_id: secrets.token_urlsafe(24) for client_id, _, _ in DEMO_CLIENTS}
            example = dataset.examples.get(EXAMPLE_LABEL)
            config_path = write_demo_config(Path(directory), servers.urls, keys, example)
            codes_path = write_demo_codes(Path(directory), [c.uscc for c in dataset.companies])
            app = create_app(load_config(config_path), clock)
            server = uvicorn.Server(uvicorn_config(app, log_level="info"))
            base = f"http://{_url_host(host)}:{listener.getsockname()[1]}"
            _banner(base, config_path, keys, dataset.examples, servers.urls)
            print(f"Codes for a bulk check (docs/bulk.md): {codes_path}\n", flush=True)
            await server.serve(sockets=[listener])
        finally:
            await servers.stop()
    finally:
        listener.close()


def write_demo_codes(directory: Path, codes: list[str], count: int = 1000) -> Path:
    """A CSV of the dataset's first `count` codes, for the README's bulk check."""
    path = directory / f"codes-{count}.csv"
    path.write_text("uscc\n" + "".join(f"{code}\n" for code in codes[:count]), encoding="utf-8")
    return path


def write_demo_config(
    directory: Path, urls: dict[str, str], keys: dict[str, str], example_uscc: str | None = None
) -> Path:
    """A config in contract §6 format; only the keys' SHA-256 is written, never the keys."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, url in urls.items():
        lines += [f"[sources.{name}]", f"url = {json.dumps(url)}", ""]
    audit = (directory / "audit.db").resolve()
    key_file = demo_audit_key(directory)
    lines += [
        "[audit]",
        f"url = {json.dumps(f'sqlite://{audit}')}",
        f"key_file = {json.dumps(str(key_file))}",
        "",
    ]
    if example_uscc is not None:
        lines += ["[graphiql]", f"example_uscc = {json.dumps(example_uscc)}", ""]
    # The README's monitoring step: the example receiver of docs/monitoring.md, on loopback.
    lines += ["[webhooks]", f"allow = [{json.dumps(DEMO_WEBHOOKS)}]", ""]
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


def demo_audit_key(directory: Path) -> Path:
    """The demo's audit key (contract §5 key_file): made once, kept with the demo's store."""
    path = (directory / "audit.key").resolve()
    if not path.exists():
        # 32 random bytes, readable by this user only, as docs/privacy.md asks of operators.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as key:
            key.write(secrets.token_bytes(32))
    return path


def _url_host(host: str) -> str:
    # A wildcard address is not one a browser can open; an IPv6 literal needs brackets.
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _banner(
    base: str,
    config_path: Path,
    keys: dict[str, str],
    examples: dict[str, str],
    department_urls: dict[str, str],
) -> None:
    print("\n=== credit-gateway demo ===")
    print(f"GraphiQL:  {base}/graphql")
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
