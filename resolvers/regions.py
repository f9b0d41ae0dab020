"""Region names (GB/T 2260) for USCC characters 3-8, from python-stdnum's division table."""

from __future__ import annotations

import functools

from stdnum import numdb

# Placeholder rows of the table that are not names of their own.
_NOT_NAMES = {"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"}


@functools.cache
def region_name(code: str) -> str | None:
    """Full current name, e.g. 陕西省榆林市榆阳区; None for a code the table does not know."""
    if len(code) != 6 or not code.isdigit():
        return None
    parts = [_name(code[:2] + "0000")]
    if code[2:4] != "00":
        parts.append(_name(code[:4] + "00"))
        if code[4:6] != "00":
            parts.append(_name(code))
    names = [p for p in parts if p and p not in _NOT_NAMES]
    if not names or _name(code) is None:
        return None
    # Municipalities repeat their own name at the prefecture level (北京市北京市…).
    return "".join(dict.fromkeys(names))


def _name(code: str) -> str | None:
    info = {k: v for _, props in _table().info(code) for k, v in props.items()}
    county = info.get("county")
    if county is None:
        return info.get("province") if code.endswith("0000") else None
    return _current(county)


def _current(entry: str) -> str | None:
    # Entries look like "[1999-]榆林市" or "[-1995]清水河县,[1995-]…"; keep the open-ended one.
    for variant in entry.split(","):
        if not variant.startswith("["):
            return variant
        span, name = variant[1:].split("]", 1)
        if span.endswith("-"):
            return name
    return None


@functools.cache
def _table() -> numdb.NumDB:
    return numdb.get("cn/loc")
