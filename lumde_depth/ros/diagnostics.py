"""The node's health figures and their ``diagnostic_msgs/DiagnosticStatus``.

:class:`NodeStats` is written from the subscription callbacks and the worker thread (one lock) and
read by the diagnostics timer: input rates, sets synchronized / processed / dropped (a set replaced
in the one-slot queue before the worker took it), bad frames by kind, end-to-end latency (image
stamp -> depth published) and per-stage times.

Every message a subscription callback receives is accounted for: per synchronizer and input,
``received = matched + evicted + pending`` (:mod:`lumde_depth.ros.sync`), and the sets handed to the
worker are ``synchronized sets = processed + dropped + bad frames``.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any, Callable

import numpy as np

WINDOW = 200   # samples kept for rates and percentiles


class RateMeter:
    """Events per second over the last :data:`WINDOW` events (0 when fewer than two)."""

    def __init__(self) -> None:
        self._times: deque[float] = deque(maxlen=WINDOW)

    def tick(self, now: float | None = None) -> None:
        self._times.append(time.monotonic() if now is None else now)

    def rate(self, now: float | None = None, stale_after: float = 5.0) -> float:
        now = time.monotonic() if now is None else now
        if len(self._times) < 2 or now - self._times[-1] > stale_after:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0

    @property
    def last(self) -> float | None:
        return self._times[-1] if self._times else None


class NodeStats:
    """Counters and windows shared by the node's threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inputs = {name: RateMeter() for name in ("image", "camera_info", "points")}
        self.received: Counter[str] = Counter()
        self.sets = RateMeter()
        self.outputs = RateMeter()
        self.synchronized = 0
        self.processed = 0
        self.dropped = 0
        self.errors: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.lost_messages: Counter[str] = Counter()
        self.latency_ms: deque[float] = deque(maxlen=WINDOW)
        self.stage_ms: dict[str, deque[float]] = {}
        self.state = "waiting for input"
        self._synchronizers: list[tuple[tuple[str, ...], Callable[[], Any]]] = []

    def input(self, name: str) -> None:
        with self.lock:
            self.inputs[name].tick()
            self.received[name] += 1

    def silent(self, names: tuple[str, ...], seconds: float, now: float | None = None) -> list[str]:
        """Those of ``names`` not heard for ``seconds`` (or never) while another input was heard within them."""
        now = time.monotonic() if now is None else now
        with self.lock:
            heard = {name: meter.last is not None and now - meter.last <= seconds
                     for name, meter in self.inputs.items()}
        return [name for name in names if not heard[name]] if any(heard.values()) else []

    def set_received(self, replaced: bool) -> None:
        with self.lock:
            self.synchronized += 1
            self.sets.tick()
            self.dropped += int(replaced)

    def skip(self, reason: str) -> None:
        """A camera-only set not handed to the worker: in mode auto while the LiDAR is live (the
        completion set of the same frame is processed), or with no monocular model to run."""
        with self.lock:
            self.skipped[reason] += 1

    def watch_synchronizer(self, inputs: tuple[str, ...], counts: Callable[[], Any]) -> None:
        """Report a synchronizer over ``inputs`` (``counts()`` -> :class:`~lumde_depth.ros.sync.SyncCounts`)
        as ``sync <inputs>: sets`` and ``sync <inputs>: <input> matched | evicted | pending``."""
        self._synchronizers.append((inputs, counts))

    def _sync_values(self) -> dict[str, str]:
        out = {}
        for inputs, counts in self._synchronizers:
            snapshot, name = counts(), "sync " + "+".join(inputs)
            out[f"{name}: sets"] = str(snapshot.sets)
            for topic, *numbers in zip(inputs, snapshot.matched, snapshot.evicted, snapshot.pending):
                out.update({f"{name}: {topic} {what}": str(n)
                            for what, n in zip(("matched", "evicted", "pending"), numbers)})
        return out

    def lost(self, topic: str, count: int) -> None:
        """Messages the middleware reports lost on an input (best effort, or a slow reader)."""
        with self.lock:
            self.lost_messages[topic] += count

    def error(self, kind: str) -> None:
        with self.lock:
            self.errors[kind] += 1

    def published(self, latency_ms: float, timings: dict[str, float]) -> None:
        with self.lock:
            self.processed += 1
            self.outputs.tick()
            self.latency_ms.append(latency_ms)
            for key, value in timings.items():
                self.stage_ms.setdefault(key, deque(maxlen=WINDOW)).append(value)

    def values(self) -> dict[str, str]:
        """Everything as strings (DiagnosticStatus key/values)."""
        sync = self._sync_values()   # not under self.lock: a synchronizer calls set_received under its own
        with self.lock:
            out = {f"{name} rate (Hz)": f"{meter.rate():.2f}" for name, meter in self.inputs.items()}
            out.update({f"received: {name}": str(self.received[name]) for name in self.inputs})
            out.update({"synchronized sets": str(self.synchronized), "set rate (Hz)": f"{self.sets.rate():.2f}",
                        "processed": str(self.processed), "output rate (Hz)": f"{self.outputs.rate():.2f}",
                        "dropped (replaced before processing)": str(self.dropped),
                        "bad frames": str(sum(self.errors.values())), "state": self.state})
            out.update({f"bad frames: {kind}": str(n) for kind, n in sorted(self.errors.items())})
            out.update({f"lost by DDS: {topic}": str(n) for topic, n in sorted(self.lost_messages.items())})
            out.update({f"camera-only sets not processed: {why}": str(n) for why, n in sorted(self.skipped.items())})
            out.update(sync)
            if self.latency_ms:
                lat = np.asarray(self.latency_ms)
                out["latency p50 (ms)"] = f"{np.percentile(lat, 50):.1f}"
                out["latency p99 (ms)"] = f"{np.percentile(lat, 99):.1f}"
            for key, window in sorted(self.stage_ms.items()):
                out[f"{key} mean (ms)"] = f"{np.mean(window):.1f}"
            return out


def status_message(stats: NodeStats, name: str, hardware_id: str, extra: dict[str, str],
                   level: int | None = None, message: str | None = None) -> Any:
    """A ``DiagnosticStatus``: OK while frames flow; WARN when input is silent, frames are bad, or
    the node runs degraded (``level`` / ``message`` override)."""
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

    values = {**stats.values(), **extra}
    if level is None:
        if stats.outputs.rate() > 0:
            level, message = DiagnosticStatus.OK, f"publishing at {values['output rate (Hz)']} Hz"
        else:
            level = DiagnosticStatus.WARN
            message = f"no depth published recently: {stats.state}"
    return DiagnosticStatus(level=level, name=name, hardware_id=hardware_id, message=message,
                            values=[KeyValue(key=k, value=v) for k, v in values.items()])
