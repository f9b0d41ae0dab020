"""ID masking (contract §1): the one rule, applied to numbers, department text and log lines."""

from __future__ import annotations

import logging
import re
import textwrap
from typing import Any
from urllib.parse import unquote

# 17 digits and a digit or X standing alone: an access-log line of a GET query, an upstream
# URL in an exception, or a careless message. A USCC or record id around it is left alone.
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
_ID_ANYWHERE = re.compile(r"[0-9]{17}[0-9Xx]")
_installed = False
# Log text is decoded until it stops changing, at most this often: each round removes one
# layer of %-escapes, and no client or proxy encodes more than two or three times.
MAX_DECODE_ROUNDS = 8
# An escape with every layer of %25 still around it: %252522 is one.
_ESCAPE = re.compile(r"%(?:25)*[0-9A-Fa-f]{2}")
# C0 and C1 controls, DEL and the Unicode line and paragraph separators: any of them in
# client text could end a log line and forge the next one, or drive a terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_NAMES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
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


def mask_ids(text: str, decode: bool = True, glued: bool = False) -> str:
    """Text with every ID-shaped run masked like the contract's 610802********0021.

    glued: also a number glued to letters or digits (AUTH110101199003077777), for text
    that holds no USCC or record id to spare, such as an authorisation reference.
    """
    if decode and "%" in text:
        # A URL-encoded quote (%22) would glue digits to the number; decoded, it stands apart.
        text = _decoded(text)
    pattern = _ID_ANYWHERE if glued else _ID_NUMBER
    return pattern.sub(lambda m: _masked_text(m.group(0)), text)


def _decoded(text: str) -> str:
    # Decoded until stable: %2522 is %22 after one round, and its "22" would still glue
    # to the number and hide it from the pattern.
    for _ in range(MAX_DECODE_ROUNDS):
        decoded = unquote(text)
        if decoded == text:
            return text
        text = decoded
    # Still encoded past the bound: each escape left, all its layers, becomes a bare "%",
    # rather than hide a number from the pattern (or decode into one for a reader). Cost
    # stays linear: a chain of thousands of %25 would take thousands of rounds.
    return _ESCAPE.sub("%", text)


def escape_controls(text: str) -> str:
    """Text with control characters written as escapes, so it stays on one log line."""
    return _CONTROL.sub(_control_escape, text)


def _control_escape(match: re.Match[str]) -> str:
    char = match.group(0)
    named = _CONTROL_NAMES.get(char)
    if named is not None:
        return named
    return f"\\x{ord(char):02x}" if ord(char) <= 0xFF else f"\\u{ord(char):04x}"


def install_log_masking() -> None:
    """Used when the gateway app is built: every record made from now on is masked and escaped."""
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
    # Arguments stay arguments (a formatter may unpack them); only text changes. Masking
    # comes first: decoding %0A makes a line break, which the escaping then writes as \n.
    if not isinstance(record.msg, str):
        # An object logged as the message (strawberry logs the GraphQLError, whose text
        # quotes the query) is printed by its str().
        record.msg = str(record.msg)
    # A message with arguments is a %-format string: decoding it would corrupt it.
    record.msg = escape_controls(mask_ids(record.msg, decode=not record.args))
    if isinstance(record.args, tuple):
        record.args = tuple(_masked(a) for a in record.args)
    elif isinstance(record.args, dict):
        record.args = {k: _masked(v) for k, v in record.args.items()}
    if record.exc_info and record.exc_info[1] is not None:
        # Formatted now, masked, and cached where every Formatter looks first.
        record.exc_text = _block(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = _block(record.stack_info)


def _block(text: str) -> str:
    # A traceback keeps its lines, but each is indented: an exception message carrying a
    # line break can then never start a line that reads like a record of its own.
    lines = (escape_controls(line) for line in mask_ids(text).split("\n"))
    return textwrap.indent("\n".join(lines), "  ")


def _masked(value: object) -> object:
    # Numbers stay numbers for %d; anything else (an exception, a URL object) becomes its
    # masked text, since its str() is what %s would print.
    if value is None or isinstance(value, int | float):
        return value
    return escape_controls(mask_ids(value if isinstance(value, str) else str(value)))
