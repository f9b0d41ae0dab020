"""The one place that knows the four departments: config name → adapter class."""

from __future__ import annotations

from collections.abc import Mapping, Set

import aiohttp

from adapters.answer_cache import CacheOptions
from adapters.base import Adapter, AdapterDeps, SourceConfig
from adapters.caching import CachingAdapter
from adapters.courts import CourtsAdapter
from adapters.market import MarketAdapter
from adapters.observe import NoObserver, Observer
from adapters.options import check_table
from adapters.shared import SharedState
from adapters.tax import TaxAdapter
from adapters.water import WaterAdapter
from core.clock import Clock

ADAPTER_TYPES: dict[str, type[Adapter]] = {
    "courts": CourtsAdapter,
    "market": MarketAdapter,
    "tax": TaxAdapter,
    "water": WaterAdapter,
}


def declared_options(name: str) -> tuple[type, ...]:
    """The options dataclasses a [sources.<name>] table may set; used when the config is read."""
    try:
        adapter_type = ADAPTER_TYPES[name]
    except KeyError:
        raise ValueError(f"no adapter for source {name!r}") from None
    # The registry puts the answer cache in front of every live department (build_adapter).
    cache = () if adapter_type.answers_from_snapshot else (CacheOptions,)
    return (*adapter_type.option_types, *cache)


def default_max_concurrency(name: str) -> int:
    """Calls in flight at once for a department whose table sets no max_concurrency."""
    try:
        return ADAPTER_TYPES[name].default_max_concurrency
    except KeyError:
        raise ValueError(f"no adapter for source {name!r}") from None


def check_source_options(
    name: str, options: Mapping[str, object], common: Set[str] = frozenset()
) -> None:
    """Refuses a key no part of the department's adapter declares, or a value out of range."""
    check_table(declared_options(name), options, common)


def build_adapter(
    config: SourceConfig,
    session: aiohttp.ClientSession,
    clock: Clock,
    observer: Observer | None = None,
    shared: SharedState | None = None,
) -> Adapter:
    """Used by the runtime at start: the adapter for one [sources.<name>] table.

    `shared`: the paces and answers several replicas share ([cache] url), else None.
    """
    try:
        adapter_type = ADAPTER_TYPES[config.name]
    except KeyError:
        raise ValueError(f"no adapter for source {config.name!r}") from None
    deps = AdapterDeps(
        config=config,
        session=session,
        clock=clock,
        observer=observer or NoObserver(),
        shared=shared,
    )
    adapter = adapter_type(deps)
    # Every live department gets the same answer cache; a snapshot source (water) already
    # answers from its own index and marks it STALE itself, so a cache would only delay a
    # new snapshot.
    return adapter if adapter.answers_from_snapshot else CachingAdapter(adapter)
