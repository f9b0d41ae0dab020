"""The garbage collector's settings for a serving gateway: set once, when it has started."""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)

# Requests allocate many short-lived objects that reference counting frees; the cycle
# collector's default first threshold (700 allocations) ran it several times per lookup.
# 10,000 runs it about once a lookup; 50,000 measured no faster and held 50 MB more
# (make bench, docs/performance.md). The older generations keep their defaults.
GEN0_THRESHOLD = 10_000
GEN1_THRESHOLD = 10
GEN2_THRESHOLD = 10


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
