"""ID masking (contract §1): the one rule, applied to numbers, department text and log lines."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote

# 17 digits and a digit or X standing alone: an access-log line of a GET query, an upstream
# URL in an exception, or a careless message. A USCC or record id around it is left alone.
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
_installed = False
# contract §1: the first 6 and the last 4 characters are kept, everything between is starred.
KEPT_HEAD = 6
KEPT_TAIL = 4
ID_LENGTH = 18


def mask_id_number(number: str) -> str:
    """A full ID number as every role but regulator sees it: 610802********0021."""
    return _masked_text(number)


def mask_given_id(value: str | None) -> str | None:
    """An ID number as a department gave it (often already masked), in contract §1's form.

    Departments mask differently (courts keep the birth year: first 10 and last 4 shown);
    re-masking only ever hides more, and gives one form to compare across departments.
    """
    if value is None or not value.strip():
        return None
    return _masked_text(value.strip())


def mask_target(raw: str) -> str:
    """The identity a personal query named, as the audit log keeps it: never the full number."""
    number = raw.strip().upper()
    if len(number) == ID_LENGTH:
        return _masked_text(number)
    # Not an ID's shape: nothing of it is kept, only its length (capped).
    return "*" * min(len(number), ID_LENGTH)


def _masked_text(text: str) -> str:
    if len(text) <= KEPT_HEAD + KEPT_TAIL:
        return "*" * len(text)
    return text[:KEPT_HEAD] + "*" * (len(text) - KEPT_HEAD - KEPT_TAIL) + text[-KEPT_TAIL:]


def mask_ids(text: str, decode: bool = True) -> str:
    """Text with every ID-shaped run masked like the contract's 610802********0021."""
    if decode and "%" in text:
        # A URL-encoded quote (%22) would glue digits to the number; decoded, it stands apart.
        text = unquote(text)
    return _ID_NUMBER.sub(lambda m: _masked_text(m.group(0)), text)


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
