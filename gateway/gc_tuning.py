"""The garbage collector's settings for a serving gateway: set once, when it has started."""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)

# Requests allocate many short-lived objects that reference counting frees; the cycle
# collector's default first threshold (700 allocations) ran it thousands of times a minute
# under load, each run also walking the survivors into older generations. Raised, it runs
# about once every few hundred lookups (make bench: docs/performance.md).
GEN0_THRESHOLD = 50_000
GEN1_THRESHOLD = 20
GEN2_THRESHOLD = 100


def settle_heap() -> None:
    """Used by the runtime once it has started: what lives now is moved out of the collector's way.

    The catalogue, the water index, the schema and the code stay for the process's life; frozen
    (gc.freeze), full collections no longer walk them (one full collection walked the whole
    heap for 45 ms on a 2-core machine, and full collections grow with the water index).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD)
    log.info("garbage collector settled: %d objects frozen", gc.get_freeze_count())
