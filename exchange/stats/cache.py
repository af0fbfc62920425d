"""Statistics are aggregates over every ledger, delivery and open listing of a region: the same figures for every
viewer of a scope and period, and they move when a month's ledger or a delivery is filed, not per request. So a
worker computes each (scope, period, viewer's jurisdiction) at most once per `stats_cache_seconds` (30 s by
default; 0 turns the cache off) and serves the stored result in between. Measured: the dashboard was the app's
most expensive read (22 queries) and under load the statistics took a quarter of the app's CPU.

Entries are shared between requests: callers treat them as read-only (the API serialises them, the pages render
them)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Annotated, Any, TypeVar

from cachetools import TTLCache
from fastapi import Depends, Request

T = TypeVar("T")
MAX_ENTRIES = 512  # scopes × periods × jurisdictions kept per worker; the least recently used go first


class FigureCache:
    def __init__(self, ttl_s: float, timer: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._entries: TTLCache[Hashable, Any] | None = TTLCache(MAX_ENTRIES, ttl_s, timer) if ttl_s > 0 else None
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The stored figures for `key`, or `compute()` stored for the next `ttl_s` seconds. Two requests that
        miss together both compute (no request waits on another's query)."""
        if self._entries is None:
            return compute()
        with self._lock:
            hit = self._entries.get(key, _MISSING)
        if hit is not _MISSING:
            return hit
        value = compute()
        with self._lock:
            self._entries[key] = value
        return value

    def clear(self) -> None:
        if self._entries is not None:
            with self._lock:
                self._entries.clear()


_MISSING = object()


async def figure_cache(request: Request) -> FigureCache:
    cache: FigureCache = request.app.state.stats_cache
    return cache


FigureCacheDep = Annotated[FigureCache, Depends(figure_cache)]
