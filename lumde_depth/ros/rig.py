"""Several cameras around one LiDAR: each camera's synchronized set gathered by the sweep it shares.

Each camera of a rig has its own synchronizer (its image, its camera_info and the shared cloud), so the
sets of one LiDAR sweep arrive one camera at a time. :class:`SweepGatherer` collects them by the cloud's
stamp and hands a :class:`Sweep` on once every camera has its set, or partial (the cameras it has) once a
newer sweep has begun or it has waited ``wait`` seconds (node parameter ``sweep_wait``) while the worker
was idle. A set for a sweep already handed on, or a
second set of one camera for one sweep, is *late* and dropped (counted by the caller). No rclpy here.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from lumde_depth.ros import convert



@dataclass
class Sweep:
    """One LiDAR sweep and the ``(image, camera_info)`` of each camera synchronized with it."""

    stamp_ns: int
    cloud: Any
    sets: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    opened: float = field(default_factory=time.monotonic)


class SweepGatherer:
    """Collects the per-camera sets of ``cameras`` by sweep (thread-safe; see the module docstring)."""

    def __init__(self, cameras: Sequence[str], wait: float = 0.5) -> None:
        self.cameras = tuple(cameras)
        self.wait = float(wait)
        self._open: dict[int, Sweep] = {}
        self._handed = -1            # the newest sweep stamp handed on
        self._lock = threading.Lock()

    def add(self, camera: str, image: Any, info: Any, cloud: Any) -> tuple[list[Sweep], int]:
        """Add one camera's set; returns ``(sweeps ready, oldest first; sets dropped as late)``."""
        stamp = convert.stamp_to_ns(cloud.header.stamp)
        with self._lock:
            if stamp <= self._handed:
                return [], 1
            sweep = self._open.setdefault(stamp, Sweep(stamp, cloud))
            late = int(camera in sweep.sets)   # the camera's newer set replaces the one it had for this sweep
            sweep.sets[camera] = (image, info)
            ready = [s for s in self._open.values() if s.stamp_ns < stamp]   # a newer sweep has begun
            if len(sweep.sets) == len(self.cameras):
                ready.append(sweep)
            return self._hand_on(ready), late

    def expired(self, idle_since: float = -float("inf"), now: float | None = None) -> list[Sweep]:
        """The sweeps that have waited longer than ``wait`` for their other cameras (called by a timer), counted
        from when they opened or, if later, from ``idle_since``: when the worker that takes them became idle
        (while it is busy, a missing camera's set may be held up behind it, and a sweep could not go on anyway)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return self._hand_on([s for s in self._open.values() if now - max(s.opened, idle_since) > self.wait])

    @property
    def waiting(self) -> int:
        """Camera sets gathered and not handed on yet."""
        with self._lock:
            return sum(len(s.sets) for s in self._open.values())

    def _hand_on(self, sweeps: list[Sweep]) -> list[Sweep]:
        sweeps = sorted(sweeps, key=lambda s: s.stamp_ns)
        for sweep in sweeps:
            del self._open[sweep.stamp_ns]
            self._handed = max(self._handed, sweep.stamp_ns)
        return sweeps
