"""Department answers as bytes, for the answer cache several replicas share (contract §11).

A stable JSON encoding of SubjectFacts and PersonFacts (core/records.py): keys sorted, dates
ISO 8601, decimals as strings, enums by value, sets sorted, with a version tag. A replica
reading an entry it cannot decode (another version's, or damaged) treats it as absent and
asks the department: it never guesses at an answer.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import orjson

from core.records import PersonFacts, SubjectFacts

# Raised when the dataclasses' fields change in a way an older replica would misread: the
# entries of the other version are then misses (and soon overwritten), never misread.
VERSION = 1
_KINDS: dict[str, type[Any]] = {"subject": SubjectFacts, "person": PersonFacts}
_KIND_OF = {cls: kind for kind, cls in _KINDS.items()}
F = TypeVar("F", SubjectFacts, PersonFacts)


class UndecodableAnswer(ValueError):
    """Bytes that are not an answer of this version; the cache treats the entry as absent."""


def encode(facts: SubjectFacts | PersonFacts) -> bytes:
    """The facts as compact JSON with its version and kind."""
    body = {"v": VERSION, "kind": _KIND_OF[type(facts)], "facts": _plain(facts)}
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def decode(data: bytes, expected: type[F]) -> F:
    """Facts of the expected class from `encode`'s bytes; UndecodableAnswer otherwise."""
    try:
        body = orjson.loads(data)
        if not isinstance(body, dict) or body.get("v") != VERSION:
            raise UndecodableAnswer("another version")
        if _KINDS.get(str(body.get("kind"))) is not expected:
            raise UndecodableAnswer("another kind of answer")
        value = _typed(body.get("facts"), expected)
    except UndecodableAnswer:
        raise
    except (orjson.JSONDecodeError, TypeError, ValueError, KeyError, InvalidOperation) as exc:
        raise UndecodableAnswer(f"not an answer: {type(exc).__name__}") from None
    if not isinstance(value, expected):
        raise UndecodableAnswer("another kind of answer")
    return typing.cast(F, value)


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, frozenset):
        return sorted(_plain(v) for v in value)  # type: ignore[type-var]
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot encode {type(value).__name__}")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _typed(value: object, hint: Any) -> object:
    """`value` (decoded JSON) as the type `hint` names; ValueError/TypeError when it is not."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(hint)
        if value is None:
            if type(None) in options:
                return None
            raise ValueError("null where a value is required")
        (inner,) = [o for o in options if o is not type(None)]
        return _typed(value, inner)
    if origin is tuple:
        inner, _ellipsis = typing.get_args(hint)
        return tuple(_typed(v, inner) for v in _list(value))
    if origin is frozenset:
        (inner,) = typing.get_args(hint)
        return frozenset(_typed(v, inner) for v in _list(value))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise TypeError(f"{hint.__name__} is not an object")
        hints = _hints(hint)
        names = {f.name for f in dataclasses.fields(hint)}
        if set(value) - names:
            raise ValueError(f"unknown field of {hint.__name__}")
        return hint(**{name: _typed(v, hints[name]) for name, v in value.items()})
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if hint is datetime:
        return datetime.fromisoformat(_str(value))
    if hint is date:
        return date.fromisoformat(_str(value))
    if hint is Decimal:
        return Decimal(_str(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError("not a boolean")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("not an integer")
        return value
    if hint is str:
        return _str(value)
    raise TypeError(f"cannot decode {hint!r}")


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise TypeError("not a list")
    return value


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value
