"""``FramePool``: threads that run the per-frame work of one batch (the cameras of a rig) side by side.

After the one network run of a rig's sweep, each camera's work is its own: resizing its image into the
network's input, upsampling and aligning its depth to its LiDAR points at full resolution, the support
mask, the organized cloud, the output messages. torch, numpy, scipy and Pillow release the GIL inside
their kernels, so Python threads run these on several cores at once. Each worker runs torch with
``threads`` intra-op threads so that ``workers x threads`` stays within the budget (the caller's own
torch thread count, i.e. the node's ``threads`` parameter or torch's default, one per core): torch's
OpenMP threads spin and wait on each other, and a core asked to run more of them than it has slows
every one down (measured on a loaded 2-core machine: the full-resolution refinement of one DDAD camera
took 3.5x longer with 2 threads than with 1).

A frame's work is the same function on the same inputs whichever thread runs it, and the refinement's
kernels (interpolation, pooling, element-wise maths, CPU ``bincount``) give the same bits with one intra-op
thread as with several: the tests compare a rig processed on a pool with the same rig processed in turn,
bit for bit. ``workers`` 1 runs everything in the calling thread, as a plain loop.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Callable, Iterable, TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")


def use_torch_threads(threads: int) -> None:
    """Run the calling thread's torch operators on ``threads`` intra-op threads."""
    torch.get_num_threads()   # torch gives a thread its count at its first use: let that happen first
    torch.set_num_threads(threads)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's or ``taskset``'s share, not the machine's)."""
    return len(os.sched_getaffinity(0))


def shared_torch_threads() -> int:
    """Intra-op torch threads for a thread whose work shares the machine with other busy threads (the node's
    worker, beside its executor, DDS, its cloud thread and the rest of the robot): half the cores this process
    may run on, at least one. Why not all of them: torch's OpenMP threads wait on each other, so one of them
    descheduled stalls the rest (on this 2-core machine while other processes kept both cores busy, the
    full-resolution refinement of a KITTI frame took 340-600 ms with 2 threads, 33-43 ms with 1)."""
    return max(1, usable_cores() // 2)


class FramePool:
    """``workers`` threads (1: none, the calling thread runs everything with its own torch threads), each
    with ``threads`` torch intra-op threads (0: the caller's torch threads shared out, at least 1 each).
    Use :meth:`map`; :meth:`close` (or ``with``) stops the threads."""

    def __init__(self, workers: int, threads: int = 0) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if threads < 0:
            raise ValueError(f"threads must be >= 0 (0 = the caller's torch threads shared out), got {threads}")
        self.workers, self.threads = int(workers), int(threads)
        self._executor: ThreadPoolExecutor | None = None
        if self.workers > 1:
            budget = torch.get_num_threads()   # also fixes this thread's own count before set_num_threads below
            self.threads = self.threads or max(1, budget // self.workers)
            started = threading.Barrier(self.workers + 1)
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="lumde_frame",
                                                initializer=self._start_worker, initargs=(started,))
            for _ in range(self.workers):   # every worker starts (and sets its torch threads) now
                self._executor.submit(int)
            started.wait()
            # torch.set_num_threads also sets the count threads started later begin with: give it back
            torch.set_num_threads(budget)

    @classmethod
    def for_frames(cls, frames: int, threads: int = 0) -> "FramePool":
        """A pool for batches of ``frames`` frames within ``threads`` CPU threads (0: the calling thread's torch
        threads, one per core by default): one worker per frame up to one per thread, the threads shared out."""
        budget = threads or torch.get_num_threads()
        workers = max(1, min(frames, budget))
        return cls(workers, budget // workers if workers > 1 else 0)

    def _start_worker(self, started: threading.Barrier) -> None:
        try:
            use_torch_threads(self.threads)
        finally:
            started.wait()   # the constructor waits for every worker, whatever happened

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``[fn(item) for item in items]``, the items spread over the workers; the first exception raised is
        raised here once every item has run."""
        items, executor = list(items), self._executor
        if executor is None or len(items) < 2:
            return [fn(item) for item in items]
        futures = [executor.submit(fn, item) for item in items]
        wait(futures)   # nothing of this batch still runs when the caller goes on (or reads the exception)
        return [future.result() for future in futures]

    def describe(self) -> str:
        """The pool's size, for ``/diagnostics``."""
        if self._executor is None:
            return "1 (frames in turn)"
        return f"{self.workers} threads, {self.threads} torch thread{'s' if self.threads > 1 else ''} each"

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> "FramePool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


IN_TURN = FramePool(1)
"""No threads: :meth:`FramePool.map` is a plain loop in the calling thread (what ``pool=None`` means)."""
