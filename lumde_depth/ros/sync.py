"""Synchronizers that account for every message they were given (real ``message_filters`` or its fallback).

``message_filters`` keeps one ``{stamp: message}`` queue per input and forgets a message silently when it
leaves a full queue (oldest stamp first), is replaced by one with the same stamp, or has no stamp. The node
must account for every message its callbacks receive, so :func:`counting_synchronizer` wraps the
synchronizer class it would use: each ``add`` is measured by the queue lengths around it, which gives,
per input, the messages *matched* (part of an emitted set), *evicted* (left the queue unmatched) and still
*pending*. For every input ``received = matched + evicted + pending`` at any moment between callbacks.

It relies only on what the ROS 2 Python library and :mod:`lumde_depth.ros.compat`'s fallback share:
``queues`` (one dict per input), ``add(msg, my_queue, my_queue_index)`` and ``signalMessage`` (compat
checks them before it takes a real synchronizer). ``own=True`` wraps the package's own synchronizers
instead of ``message_filters``': the offline tools use them, as they need no rclpy and read the stamps
of rosbags messages, which the real library refuses.
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any, Sequence

from lumde_depth.ros import compat


@dataclass(frozen=True)
class SyncCounts:
    """A snapshot of one synchronizer's accounting; lists are per input, in the order of its inputs."""

    sets: int
    matched: tuple[int, ...]
    evicted: tuple[int, ...]
    pending: tuple[int, ...]


@functools.cache
def _counting(base: type) -> type:
    class Counting(base):
        """``base`` with per-input matched / evicted counters (see the module docstring)."""

        def connectInput(self, fs: Sequence[Any]) -> None:  # noqa: N802 (ROS API name)
            self.sets = 0
            self.matched = [0] * len(fs)
            self.evicted = [0] * len(fs)
            self._count_lock = threading.Lock()
            super().connectInput(fs)

        def add(self, msg: Any, my_queue: dict, my_queue_index: int | None = None) -> None:
            with self._count_lock:
                index = next(i for i, q in enumerate(self.queues) if q is my_queue)
                before, sets = [len(q) for q in self.queues], self.sets
                super().add(msg, my_queue, my_queue_index)
                emitted = self.sets - sets
                for i, (queue, length) in enumerate(zip(self.queues, before)):
                    self.matched[i] += emitted
                    self.evicted[i] += length + (i == index) - emitted - len(queue)

        def signalMessage(self, *msg: Any) -> None:  # noqa: N802 (ROS API name)
            self.sets += 1
            super().signalMessage(*msg)

        def set_slop(self, seconds: float) -> None:
            """A new slop for an approximate synchronizer that is running: the real library keeps an rclpy
            ``Duration`` in ``slop``, the package's own ``slop_ns``."""
            with self._count_lock:
                if hasattr(self, "slop_ns"):
                    self.slop_ns = int(round(seconds * 1e9))
                else:
                    from rclpy.duration import Duration
                    self.slop = Duration(seconds=seconds)

        def counts(self) -> SyncCounts:
            with self._count_lock:
                return SyncCounts(self.sets, tuple(self.matched), tuple(self.evicted),
                                  tuple(len(q) for q in self.queues))

    Counting.__name__ = Counting.__qualname__ = f"Counting{base.__name__}"
    return Counting


def counting_synchronizer(subscribers: Sequence[Any], queue_size: int, slop: float | None, own: bool = False
                          ) -> Any:
    """An exact (``slop`` None) or approximate time synchronizer over ``subscribers`` with a ``counts()``
    method returning :class:`SyncCounts`: ``message_filters``' (real where it works), or with ``own`` the
    package's own (no rclpy; any ``header.stamp`` with ``sec`` / ``nanosec``)."""
    library = compat if own else compat.message_filters
    if slop is None:
        return _counting(library.TimeSynchronizer)(subscribers, queue_size)
    return _counting(library.ApproximateTimeSynchronizer)(subscribers, queue_size, slop)
