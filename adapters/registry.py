"""The one place that knows the four departments: config name → adapter class."""

from __future__ import annotations

import aiohttp

from adapters.base import Adapter, AdapterDeps, SourceConfig
from adapters.caching import CachingAdapter
from adapters.courts import CourtsAdapter
from adapters.market import MarketAdapter
from adapters.tax import TaxAdapter
from adapters.water import WaterAdapter
from gateway.clock import Clock

ADAPTER_TYPES: dict[str, type[Adapter]] = {
    "courts": CourtsAdapter,
    "market": MarketAdapter,
    "tax": TaxAdapter,
    "water": WaterAdapter,
}


def build_adapter(config: SourceConfig, session: aiohttp.ClientSession, clock: Clock) -> Adapter:
    """Used by the runtime at start: the adapter for one [sources.<name>] table."""
    try:
        adapter_type = ADAPTER_TYPES[config.name]
    except KeyError:
        raise ValueError(f"no adapter for source {config.name!r}") from None
    adapter = adapter_type(AdapterDeps(config=config, session=session, clock=clock))
    # Every live department gets the same answer cache; a snapshot source (water) already
    # answers from its own index and marks it STALE itself, so a cache would only delay a
    # new snapshot.
    return adapter if adapter.answers_from_snapshot else CachingAdapter(adapter)
