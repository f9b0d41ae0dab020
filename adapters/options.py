"""Adapter options: each part of an adapter declares its knobs as a dataclass, checked at load.

A `[sources.<name>]` table holds the contract's keys (url, timeout_s, max_concurrency) and
the knobs its adapter declares (found through the registry). The config refuses any other
key and any value out of range when it is read, naming the table and the key; adapters then
read their knobs typed, with `read_options`.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Mapping, Set
from dataclasses import MISSING, Field, field, fields
from typing import Any, TypeVar

T = TypeVar("T")


class OptionError(ValueError):
    """A key of a [sources.<name>] table that is unknown or out of range; names the key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key} {message}")
        self.key = key


def knob(
    default: Any,
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
) -> Any:
    """A declared option with its default and range; used in the options dataclasses."""
    return field(default=default, metadata={"minimum": minimum, "above": above, "max": maximum})


def read_options(cls: type[T], table: Mapping[str, object]) -> T:
    """The options `cls` declares, from the keys of `table` it names (others are not its own)."""
    hints = typing.get_type_hints(cls)
    values = {
        f.name: _checked(f, hints[f.name], table[f.name])
        for f in fields(cls)  # type: ignore[arg-type]
        if f.name in table
    }
    try:
        return cls(**values)
    except OptionError:
        raise
    except (TypeError, ValueError) as exc:  # a cross-check in __post_init__
        raise OptionError(next(iter(values), cls.__name__), str(exc)) from None


def check_table(declared: Iterable[type], table: Mapping[str, object], common: Set[str]) -> None:
    """Every key known (the common ones or a declared knob) and every value in range."""
    classes = list(declared)
    known = set(common) | {f.name for cls in classes for f in fields(cls)}
    unknown = sorted(set(table) - known)
    if unknown:
        hints = [
            f"{key} (did you mean {close[0]}?)"
            if (close := difflib.get_close_matches(key, known, n=1))
            else key
            for key in unknown
        ]
        raise OptionError(hints[0], f"is not a known key (known: {', '.join(sorted(known))})")
    for cls in classes:
        read_options(cls, table)


def _checked(declared: Field[Any], hint: Any, value: object) -> object:
    name = declared.name
    base = _base_type(hint)
    default = declared.default if declared.default is not MISSING else None
    if base is bool:
        if not isinstance(value, bool):
            raise OptionError(name, "must be true or false")
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise OptionError(name, f"must be a whole number{_range(declared)}")
    elif base is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OptionError(name, f"must be a number{_range(declared)}")
        value = float(value)
    elif base is str:
        if not isinstance(value, str):
            raise OptionError(name, "must be a string")
        return value
    else:  # pragma: no cover - a declaration error of ours, caught by the tests of options
        raise TypeError(f"option {name} of type {hint} default {default} is not supported")
    number = float(value)
    kind = "whole number" if base is int else "number"
    meta = declared.metadata
    if (
        (meta.get("minimum") is not None and number < meta["minimum"])
        or (meta.get("above") is not None and number <= meta["above"])
        or (meta.get("max") is not None and number > meta["max"])
    ):
        raise OptionError(name, f"must be a {kind}{_range(declared)}")
    return value


def _base_type(hint: Any) -> Any:
    # `float | None` declares an option whose default is computed (TOML has no null).
    if isinstance(hint, types.UnionType):
        args = [a for a in hint.__args__ if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


def _range(declared: Field[Any]) -> str:
    meta = declared.metadata
    parts = []
    if meta.get("minimum") is not None:
        parts.append(f">= {meta['minimum']:g}")
    if meta.get("above") is not None:
        parts.append(f"> {meta['above']:g}")
    if meta.get("max") is not None:
        parts.append(f"<= {meta['max']:g}")
    return f" {' and '.join(parts)}" if parts else ""
