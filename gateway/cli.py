"""The `credit-gateway` command: serve, schema, sandbox, demo, cluster, audit verify and bulk."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from gateway.config import ConfigError, load_config
from gateway.logging_setup import configure_logging
from resolvers.catalogue import CatalogueError

log = logging.getLogger("credit_gateway")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    try:
        # The [logging] format of the config the command runs with (text without one), set
        # before anything is served, so every line of `serve` is in that format.
        config = getattr(args, "config", None)
        configure_logging(args.log_level, load_config(config).logging.format if config else "text")
        result: int = args.run(args)
    except (ConfigError, CatalogueError) as exc:
        print(f"credit-gateway: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="credit-gateway", description=__doc__)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway (GraphQL at /graphql)")
    serve.add_argument("--config", required=True, help="TOML file, see docs/configuration.md")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(run=_serve)

    schema = commands.add_parser("schema", help="print the GraphQL SDL")
    schema.add_argument(
        "--check",
        metavar="FILE",
        help="exit 0 when the served schema keeps the SDL in FILE, else 1 listing each break",
    )
    schema.set_defaults(run=_schema)

    sandbox = commands.add_parser("sandbox", help="run the four department stand-ins")
    _dataset_arguments(sandbox)
    sandbox.add_argument("--host", default="127.0.0.1")
    for index, name in enumerate(("courts", "market", "tax", "water")):
        sandbox.add_argument(f"--{name}-port", type=int, default=9101 + index)
    sandbox.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="DEPT:KNOB=VALUE,…",
        help="inject faults, e.g. courts:latency_ms=200,error_rate=0.1 (repeatable)",
    )
    sandbox.set_defaults(run=_sandbox)

    demo = commands.add_parser("demo", help="sandbox + gateway on one machine, with demo keys")
    _dataset_arguments(demo)
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--dir", default=".demo", help="where the demo config and audit log go")
    demo.set_defaults(run=_demo)

    cluster = commands.add_parser(
        "cluster",
        help="sandbox + N gateway replicas on PostgreSQL and Redis behind a round-robin front",
    )
    _dataset_arguments(cluster)
    cluster.add_argument("--replicas", type=int, default=3, help="gateway processes (default 3)")
    cluster.add_argument("--host", default="127.0.0.1", help="the front's address")
    cluster.add_argument("--port", type=int, default=8000, help="the front's port")
    cluster.add_argument(
        "--replica-port", type=int, help="the first replica's port (default: --port + 1)"
    )
    cluster.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/credit_cluster",
        help="[store] and [audit] url; the database is created when missing",
    )
    cluster.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="[cache] url")
    cluster.add_argument("--dir", default=".cluster", help="config, audit key, logs, codes")
    cluster.set_defaults(run=_cluster)

    audit = commands.add_parser("audit", help="the personal-information query log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser(
        "verify",
        help="check the hash chain, and with [audit] key_file its seals and sealed head; "
        "exit 0 intact, 1 naming the first broken entry, 2 on a config error",
    )
    verify.add_argument(
        "--config", required=True, help="TOML file whose [audit] url and key_file are used"
    )
    verify.set_defaults(run=_audit_verify)

    bulk = commands.add_parser(
        "bulk",
        help="a bulk check (批量核查) of a file of codes, its results as CSV (docs/bulk.md)",
    )
    bulk.add_argument(
        "codes",
        nargs="?",
        metavar="codes.csv",
        help="one USCC a line, or a CSV whose header row has a uscc column",
    )
    bulk.add_argument("--url", required=True, help="the gateway's base URL, http://host:port")
    bulk.add_argument(
        "--key-env",
        required=True,
        metavar="VAR",
        help="the environment variable holding the API key (never the key itself)",
    )
    bulk.add_argument("--scenario", default="CREDIT_LOAN", help="default: CREDIT_LOAN")
    bulk.add_argument("--label", metavar="TEXT", help="a name for the check")
    bulk.add_argument("--out", metavar="FILE", help="where the CSV goes (default: bulk-<id>.csv)")
    bulk.add_argument("--resume", metavar="ID", help="follow a check already submitted")
    bulk.set_defaults(run=_bulk)
    return parser


def _dataset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=2026, help="dataset seed (deterministic)")
    parser.add_argument("--subjects", type=int, default=2000, help="number of subjects")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.app import create_app
    from gateway.listener import claim_port
    from gateway.server import uvicorn_config

    app = create_app(load_config(args.config))
    # Claimed before the app starts, so a taken port is one clear line and exit 2.
    listener = claim_port(args.host, args.port)
    server = uvicorn.Server(uvicorn_config(app, log_level=args.log_level))
    try:
        server.run(sockets=[listener])
    finally:
        listener.close()
    return 0


def _schema(args: argparse.Namespace) -> int:
    from schema import build_schema

    printed = build_schema().as_str()
    if args.check is None:
        print(printed)
        return 0

    from pathlib import Path

    import graphql

    from schema.compatibility import InvalidContract, breaking_changes, load_contract

    try:
        contract = load_contract(Path(args.check).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        print(f"credit-gateway: cannot read {args.check}: {exc}", file=sys.stderr)
        return 2
    except InvalidContract as exc:
        print(f"credit-gateway: {args.check} is not a valid GraphQL schema: {exc}", file=sys.stderr)
        return 2
    changes = breaking_changes(contract, graphql.build_schema(printed))
    for change in changes:
        print(change, file=sys.stderr)
    if changes:
        return 1
    print(f"{args.check}: the served schema keeps this contract")
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    from core.clock import Clock
    from sandbox.faults import FaultState, parse_fault_spec
    from sandbox.generator import generate
    from sandbox.runner import serve_forever

    dataset = generate(args.seed, args.subjects, Clock.from_env().today())
    ports = {name: getattr(args, f"{name}_port") for name in ("courts", "market", "tax", "water")}
    faults: dict[str, FaultState] = {}
    for spec in args.fault:
        try:
            department, knobs = parse_fault_spec(spec)
        except ValueError as exc:
            raise ConfigError(f"--fault {spec}: {exc}") from None
        faults.setdefault(department, FaultState.for_department(department)).update(knobs)
    asyncio.run(serve_forever(dataset, args.host, ports, faults))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    asyncio.run(run_demo(args.seed, args.subjects, args.host, args.port, args.dir))
    return 0


def _cluster(args: argparse.Namespace) -> int:
    from gateway.cluster import ClusterOptions, run_cluster

    options = ClusterOptions(
        replicas=args.replicas,
        host=args.host,
        port=args.port,
        replica_port=args.replica_port,
        postgres=args.postgres,
        redis=args.redis,
        directory=args.dir,
        seed=args.seed,
        subjects=args.subjects,
        log_level=args.log_level,
    )
    run_cluster(options)
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    from gateway.audit_store import load_audit_key, verify_chain

    config = load_config(args.config).audit
    # The gateway's own key: a missing or short one is a config error (exit 2), as at start.
    key = load_audit_key(config.key_file) if config.key_file is not None else None
    result = verify_chain(config.url, key)
    if result.ok:
        print(f"audit chain intact: {result.entries} entries")
        if result.keyed:
            head = "none yet" if result.head_id is None else f"entry {result.head_id}"
            print(
                f"sealed with [audit] key_file: {result.sealed}; unsealed, written before "
                f"the key: {result.unsealed}; sealed head: {head}"
            )
        else:
            # Said on every run: without the key a recomputed or shortened chain passes.
            print(
                "note: no [audit] key_file, so seals and the head are not checked; a chain "
                "rewritten and recomputed, or cut short, is not detected",
                file=sys.stderr,
            )
        return 0
    if result.broken_id is None:
        print(f"audit chain cannot be verified: {result.problem}", file=sys.stderr)
    else:
        print(f"audit chain broken at entry {result.broken_id}: {result.problem}", file=sys.stderr)
    return 1


def _bulk(args: argparse.Namespace) -> int:
    # A client of a gateway over HTTP: imports nothing of the app (docs/bulk.md).
    from gateway.bulk_client import main as bulk_main

    return bulk_main(args)


if __name__ == "__main__":
    sys.exit(main())
