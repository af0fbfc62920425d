"""What a serving worker does once at start-up, before its first request: load the reference data and compile
every template, then move all of it out of the garbage collector's way.

Why: a worker's heap is mostly objects that live as long as the process (modules, the catalogue, divisions and
boundaries, compiled templates and queries). CPython's full collections walk all of them, and under load they
grew to 80-190 ms each, about every ten seconds per worker: every request in flight stopped meanwhile (the load
test's p99 for the cheapest route was 280 ms at 4 requests/s). `gc.freeze()` puts what exists at start-up into
a permanent generation that collections skip, and a larger first threshold makes the young collections that
promote objects rarer.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

log = logging.getLogger(__name__)

YOUNG_THRESHOLD = 20_000  # CPython's default is 700 allocations


def warm_up() -> int:
    """Load what every worker ends up loading anyway; returns the number of templates compiled."""
    from exchange.core.web import templates
    from exchange.reference.catalogue import load_catalogue
    from exchange.reference.places import _layer, load_divisions

    load_catalogue()
    load_divisions()
    for level in ("province", "city"):
        _layer(level)
    names = templates.env.list_templates(extensions=["html"])
    for name in names:
        templates.env.get_template(name)
    return len(names)


@asynccontextmanager
async def serving_lifespan(app: FastAPI) -> AsyncIterator[None]:
    compiled = warm_up()
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    log.info("worker ready: %d templates compiled, %d objects frozen", compiled, gc.get_freeze_count())
    yield
