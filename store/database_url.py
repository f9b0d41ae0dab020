"""Database URLs of the config ([audit] url, later [store] url): which file or server they name."""

from __future__ import annotations

from pathlib import Path

SQLITE_PREFIX = "sqlite://"


def sqlite_path(url: str) -> Path:
    """The file behind a sqlite:// URL; used by config checks, the stores and `audit verify`.

    contract §7: `sqlite:///abs/path` and `sqlite:////abs/path` both name `/abs/path`;
    `sqlite://relative/path` is relative to the working directory at start.
    """
    if not url.startswith(SQLITE_PREFIX):
        raise ValueError("must be sqlite:// followed by a file path")
    rest = url[len(SQLITE_PREFIX) :]
    if not rest or rest.endswith("/"):
        raise ValueError("must name a file after sqlite://")
    if any(c in rest for c in "?#\x00"):
        # The rest is taken literally as a path; SQLite URI options would be silently misread.
        raise ValueError("takes a plain file path, without ?query or #fragment")
    if rest.startswith("/"):
        # One root, however many slashes: POSIX keeps a leading "//" as a distinct root,
        # which SQLite's URI form then reads as a host ("invalid uri authority").
        rest = "/" + rest.lstrip("/")
    path = Path(rest)
    if path.name == ":memory:":
        raise ValueError("must be a file: an in-memory database is not durable")
    return path
