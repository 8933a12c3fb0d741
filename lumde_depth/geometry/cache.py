"""``bytes_cache``: a least-recently-used cache of per-camera arrays, bounded by their size in bytes.

Why not ``functools.lru_cache(maxsize=n)``: a count is the wrong bound for grids whose size follows the camera.
Four entries thrash on a rig of six raw cameras (every frame recomputes each camera's grid, about a second
for a 1920x1200 raw image), while four 4096x3000 grids would keep 590 MB. A byte budget keeps every camera of
a rig and no more than the budget, whatever the image sizes.
"""
from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from typing import Any, Callable, TypeVar

import numpy as np

R = TypeVar("R")


def nbytes(value: Any) -> int:
    """Bytes held by ``value``: an array's, or the sum of an object's array attributes."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    return sum(int(v.nbytes) for v in vars(value).values() if isinstance(v, np.ndarray))


def bytes_cache(max_bytes: int, size: Callable[[Any], int] = nbytes) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Decorator: cache a function of hashable arguments, dropping the least recently used results once they
    hold more than ``max_bytes`` together (the newest result is always kept, even alone above the budget).
    Thread-safe; a result is computed outside the lock (two threads may compute the same one once)."""
    def decorate(fn: Callable[..., R]) -> Callable[..., R]:
        entries: OrderedDict[tuple, tuple[R, int]] = OrderedDict()
        lock = threading.Lock()
        held = [0]

        @functools.wraps(fn)
        def cached(*args: Any) -> R:
            with lock:
                if args in entries:
                    entries.move_to_end(args)
                    return entries[args][0]
            value = fn(*args)
            with lock:
                if args not in entries:
                    entries[args] = (value, size(value))
                    held[0] += entries[args][1]
                while held[0] > max_bytes and len(entries) > 1:
                    held[0] -= entries.popitem(last=False)[1][1]
                return entries[args][0]

        def cache_clear() -> None:
            with lock:
                entries.clear()
                held[0] = 0

        cached.cache_clear = cache_clear   # type: ignore[attr-defined]
        cached.cache_bytes = lambda: held[0]   # type: ignore[attr-defined]
        return cached
    return decorate
