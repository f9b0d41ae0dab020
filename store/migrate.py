"""Schema migrations of the state store: numbered SQL files, applied at start in one transaction.

Plain numbered files rather than alembic: the store has a handful of tables written in
portable SQL, both engines run the same file, and alembic would bring SQLAlchemy along for
nothing else. A file is applied once, recorded in `schema_migrations`; on PostgreSQL an
advisory lock keeps two replicas starting together from applying it twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from store.database import Database

_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
# Any number, the same on every replica: pg_advisory_xact_lock's key for migrations.
_LOCK_KEY = 0x43474D49


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered file."""

    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """The file's statements (our files put no ; inside a statement)."""
        text = "\n".join(line for line in self.sql.splitlines() if not line.startswith("--"))
        return [s.strip() for s in text.split(";") if s.strip()]


def migrations() -> list[Migration]:
    """The package's migration files in version order."""
    found = []
    for entry in resources.files("store").joinpath("migrations").iterdir():
        match = _FILE.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


async def migrate(db: Database) -> list[int]:
    """Used by the runtime at start: applies what is missing; the versions it applied."""
    applied_now: list[int] = []
    async with db.transaction() as tx:
        if db.dialect == "postgresql":
            await tx.execute("SELECT pg_advisory_xact_lock(?)", (_LOCK_KEY,))
        await tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        done = {row[0] for row in await tx.fetch_all("SELECT version FROM schema_migrations")}
        known = migrations()
        newest = max((m.version for m in known), default=0)
        if done and max(done) > newest:
            raise RuntimeError(
                f"the state store is at schema version {max(done)}, newer than this gateway's "
                f"{newest}: run the newer gateway, or restore a backup made for this one"
            )
        for migration in known:
            if migration.version in done:
                continue
            for statement in migration.statements():
                await tx.execute(statement)
            await tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, datetime.now(UTC).isoformat()),
            )
            applied_now.append(migration.version)
    return applied_now
