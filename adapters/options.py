"""Reading adapter knobs from the extra keys of a [sources.<name>] table, once at start."""

from __future__ import annotations

from collections.abc import Mapping


def option_float(options: Mapping[str, object], key: str, default: float) -> float:
    """A positive number; ValueError if the table gives anything else."""
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"source option {key} must be a positive number")
    return float(value)


def option_seconds(options: Mapping[str, object], key: str, default: float) -> float:
    """A duration where 0 switches the feature off (cache_ttl_s, stale_ttl_s)."""
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e9:
        raise ValueError(f"source option {key} must be a number of seconds >= 0")
    return float(value)


def option_count(options: Mapping[str, object], key: str, default: int) -> int:
    """A whole number >= 0 (retries, breaker_failures; 0 switches the feature off)."""
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"source option {key} must be a whole number >= 0")
    return value
