"""Keeps full citizen ID numbers out of every log line (contract §1: masked values only)."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote

# 17 digits and a digit or X standing alone: an access-log line of a GET query, an upstream
# URL in an exception, or a careless message. A USCC or record id around it is left alone.
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])([0-9]{6})[0-9]{8}([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")
_installed = False


def mask_ids(text: str, decode: bool = True) -> str:
    """Text with every ID-shaped run masked like the contract's 610802********0021."""
    if decode and "%" in text:
        # A URL-encoded quote (%22) would glue digits to the number; decoded, it stands apart.
        text = unquote(text)
    return _ID_NUMBER.sub(lambda m: f"{m.group(1)}{'*' * 8}{m.group(2)}", text)


def install_log_masking() -> None:
    """Used when the gateway app is built: every record created from now on is masked."""
    global _installed
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        _mask_record(record)
        return record

    logging.setLogRecordFactory(masked_record)
    _installed = True


def _mask_record(record: logging.LogRecord) -> None:
    # Arguments stay arguments (uvicorn's access formatter unpacks them); only text changes.
    if isinstance(record.msg, str):
        # A message with arguments is a %-format string: decoding it would corrupt it.
        record.msg = mask_ids(record.msg, decode=not record.args)
    elif not record.args:
        # An object logged as the message (strawberry logs the GraphQLError, whose text
        # quotes the query) is printed by its str().
        record.msg = mask_ids(str(record.msg))
    if isinstance(record.args, tuple):
        record.args = tuple(_masked(a) for a in record.args)
    elif isinstance(record.args, dict):
        record.args = {k: _masked(v) for k, v in record.args.items()}
    if record.exc_info and record.exc_info[1] is not None:
        # Formatted now, masked, and cached where every Formatter looks first.
        record.exc_text = mask_ids(logging.Formatter().formatException(record.exc_info))


def _masked(value: object) -> object:
    # Numbers stay numbers for %d; anything else (an exception, a URL object) becomes its
    # masked text, since its str() is what %s would print.
    if value is None or isinstance(value, int | float):
        return value
    return mask_ids(value if isinstance(value, str) else str(value))
