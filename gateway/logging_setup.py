"""The process's log handler: text lines for people, or one JSON object a line (`[logging]`).

Set up by the command line before anything is served. Masking (core/masking.py) happens
when a record is made, before any formatter: the JSON formatter receives masked text, and
masks its whole line once more, so extra fields no record factory sees are covered too.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import IO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from core.masking import install_log_masking, mask_ids

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Fields every JSON line starts with, under these names; a record's extra fields follow.
_JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
_RENAMED = {"asctime": "time", "levelname": "level", "name": "logger"}
# uvicorn's coloured copy of its own message: noise in a collector.
_DROPPED = ("color_message",)


class JsonLineFormatter(JsonFormatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, extras."""

    def __init__(self) -> None:
        super().__init__(
            _JSON_FIELDS,
            rename_fields=_RENAMED,
            reserved_attrs=[*RESERVED_ATTRS, *_DROPPED],
        )

    def format(self, record: logging.LogRecord) -> str:
        """The record's line; a traceback is the one the record factory masked."""
        exc_info = record.exc_info
        if record.exc_text:
            # python-json-logger formats exc_info again from the live exception, whose text
            # was never masked; the masked exc_text the factory left is used instead.
            record.exc_info = None
        try:
            line = super().format(record)
        finally:
            record.exc_info = exc_info
        # Extra fields (and anything a library attached) bypass the record factory: the
        # line as a whole is masked once more; JSON escapes every control character.
        return mask_ids(line, decode=False)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The record's time in UTC with milliseconds, as collectors parse it."""
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def configure_logging(level: str, fmt: str, stream: IO[str] | None = None) -> None:
    """Used by `credit-gateway` at start: the root handler, text or JSON, at `level`."""
    # From the first record on, not only once the app is built.
    install_log_masking()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLineFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler], force=True)
