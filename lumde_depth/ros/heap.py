"""The node's C heap around frames of a new size (glibc's malloc; a no-op with another C library).

glibc serves an allocation below its mmap threshold from the calling thread's arena and keeps the arena's
freed memory for reuse. Its threshold rises with every mapped block freed (up to 32 MB), so one oversized
frame (4096x3000: 12-49 MB arrays) fills the worker's arena with blocks of its size. ``malloc_trim`` returns
their pages, but the frames after it then spread their allocations over the enlarged arena and touch its
pages again: 20 KITTI frames after one 4096x3000 frame the node stayed 17-60 MB above its level before it.

So :class:`FrameHeap` fixes the thresholds at the ceiling glibc's own adjustment reaches (arrays below 32 MB
come from the arena and are reused, as before, which a frame of a steady size needs: fixed lower, a rig of
six 1936x1216 cameras ran 60 % slower), and processes a frame larger than every recent one with a low
threshold: its arrays get mappings of their own, which are returned when freed. Only the first frame of a
larger size pays for that (page faults: about 0.1 ms per MB); later frames of that size are steady again.
After a frame whose size differs from the previous one, the free pages of every arena are given back.
"""
from __future__ import annotations

import ctypes
import functools
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3   # mallopt parameters (malloc.h)
STEADY_MMAP_THRESHOLD = 32 << 20   # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: where its adjustment stops
STEADY_TRIM_THRESHOLD = 64 << 20   # twice the mmap threshold, as glibc's adjustment sets it
OVERSIZED_MMAP_THRESHOLD = 1 << 20   # a frame larger than every recent one: arrays from 1 MB on are mapped
RECENT_FRAMES = 20   # a frame is oversized when larger than each of this many before it


@functools.cache
def _libc() -> Any:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:   # not glibc
        return None
    return libc if all(hasattr(libc, name) for name in ("mallopt", "malloc_trim")) else None


def _mallopt(param: int, value: int) -> None:
    libc = _libc()
    if libc is not None:
        libc.mallopt(param, value)


def release_free_heap() -> None:
    """Give the free pages of every arena back to the system."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


class FrameHeap:
    """Wraps the processing of each frame (:meth:`frame`); sets the steady thresholds when built."""

    def __init__(self) -> None:
        self._recent: deque[int] = deque(maxlen=RECENT_FRAMES)
        _mallopt(M_MMAP_THRESHOLD, STEADY_MMAP_THRESHOLD)
        _mallopt(M_TRIM_THRESHOLD, STEADY_TRIM_THRESHOLD)

    def oversized(self, nbytes: int) -> bool:
        """Whether a frame of ``nbytes`` image bytes is larger than each of the recent ones (the first is)."""
        return nbytes > max(self._recent, default=0)

    @contextmanager
    def frame(self, nbytes: int) -> Iterator[bool]:
        """Process a frame of ``nbytes`` image bytes (all cameras of a sweep together) inside; yields whether
        it is oversized (its arrays then mapped on their own)."""
        oversized = self.oversized(nbytes)
        resized = bool(self._recent) and nbytes != self._recent[-1]
        if oversized:
            _mallopt(M_MMAP_THRESHOLD, OVERSIZED_MMAP_THRESHOLD)
        try:
            yield oversized
        finally:
            if oversized:
                _mallopt(M_MMAP_THRESHOLD, STEADY_MMAP_THRESHOLD)
            self._recent.append(nbytes)
            if oversized or resized:
                release_free_heap()
