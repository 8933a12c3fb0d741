"""The node's health figures and their ``diagnostic_msgs/DiagnosticStatus``.

:class:`NodeStats` is written from the subscription callbacks and the worker thread (one lock) and
read by the diagnostics timer: input rates (over the last :data:`RATE_WINDOW` seconds), sets
synchronized / processed / dropped (a set replaced in the one-slot queue before the worker took it),
bad frames by kind (and the dominant kind of the recent ones, for the status line), end-to-end
latency (image stamp -> depth published; sets whose stamp is zero, in the future or older than the
previous set's are counted apart and kept out of it) and per-stage times.

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

WINDOW = 200        # samples kept for latency percentiles and stage means
RATE_WINDOW = 5.0   # seconds over which rates are measured


class RateMeter:
    """Events per second over the last ``window`` seconds: the intervals between the events in it over
    the time from the first of them to now (0 with fewer than two), so a pause or a restart shows
    within ``window`` seconds whatever the rate before it."""

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self.window = float(window)
        self._times: deque[float] = deque()
        self._last_ticks: deque[float] = deque(maxlen=11)   # for period(), whatever the window

    def tick(self, now: float | None = None) -> None:
        """One event (called from one thread at a time; readers work on snapshots)."""
        now = time.monotonic() if now is None else now
        self._times.append(now)
        self._last_ticks.append(now)
        while now - self._times[0] > self.window:
            self._times.popleft()

    def _recent(self, now: float) -> list[float]:
        return [t for t in tuple(self._times) if now - t <= self.window]

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        times = self._recent(now)
        if len(times) < 2:
            return 0.0
        span = now - times[0]
        return (len(times) - 1) / span if span > 0 else 0.0

    def period(self) -> float | None:
        """Mean seconds between the last (up to 11) events, however old (None with fewer than two)."""
        times = tuple(self._last_ticks)
        return (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else None

    @property
    def last(self) -> float | None:
        return self._times[-1] if self._times else None


class NodeStats:
    """Counters and windows shared by the node's threads."""

    def __init__(self, inputs: tuple[str, ...] = ("image", "camera_info", "points")) -> None:
        """``inputs``: the input names (a rig's cameras have theirs under their names: ``front/image``)."""
        self.lock = threading.Lock()
        self.inputs = {name: RateMeter() for name in inputs}
        self.received: Counter[str] = Counter()
        self.sets = RateMeter()
        self.outputs = RateMeter()
        self.synchronized = 0
        self.processed = 0
        self.dropped = 0
        self.errors: Counter[str] = Counter()
        self.recent_errors: deque[tuple[float, str]] = deque(maxlen=WINDOW)
        self.error_text: dict[str, str] = {}
        self.stamp_anomalies: Counter[str] = Counter()
        self.incompatible_qos: Counter[str] = Counter()
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

    def silent(self, names: tuple[str, ...], seconds: float, now: float | None = None,
               periods: float = 3.0) -> list[str]:
        """Those of ``names`` not heard for ``seconds`` (or never) while another input was heard within them.

        An input with a rate of its own counts as heard until ``periods`` of its own mean intervals have
        passed, so a slow topic of large messages (one still in transit) is not called missing."""
        now = time.monotonic() if now is None else now
        with self.lock:
            heard = {}
            for name, meter in self.inputs.items():
                period = meter.period()
                patience = max(seconds, periods * period) if period is not None else seconds
                heard[name] = meter.last is not None and now - meter.last <= patience
        return [name for name in names if not heard[name]] if any(heard.values()) else []

    def quiet(self, seconds: float, now: float | None = None) -> bool:
        """No input at all within ``seconds`` (never, or not any more)."""
        now = time.monotonic() if now is None else now
        with self.lock:
            return all(meter.last is None or now - meter.last > seconds for meter in self.inputs.values())

    def set_received(self, replaced: bool | int) -> None:
        """One synchronized set; ``replaced``: sets it made the node drop (an unprocessed one, or itself late)."""
        with self.lock:
            self.synchronized += 1
            self.sets.tick()
            self.dropped += int(replaced)

    def drop(self, sets: int) -> None:
        """``sets`` synchronized sets dropped unprocessed (a rig's sweep replaced before the worker took it)."""
        with self.lock:
            self.dropped += sets

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

    def error(self, kind: str, text: str = "") -> None:
        with self.lock:
            self.errors[kind] += 1
            self.recent_errors.append((time.monotonic(), kind))
            if text:
                self.error_text[kind] = text

    def refused(self, seconds: float = RATE_WINDOW, now: float | None = None) -> tuple[str, int, int] | None:
        """``(dominant kind, its count, all refused)`` among the bad frames of the last ``seconds``; None if none."""
        now = time.monotonic() if now is None else now
        with self.lock:
            kinds = Counter(kind for t, kind in self.recent_errors if now - t <= seconds)
        if not kinds:
            return None
        kind, n = kinds.most_common(1)[0]
        return kind, n, sum(kinds.values())

    def stamp_anomaly(self, kind: str) -> None:
        """A processed set whose stamp is ``zero``, in the ``future`` or ``backward`` (older than the previous
        set's): counted here, kept out of the latency figures."""
        with self.lock:
            self.stamp_anomalies[kind] += 1

    def incompatible(self, topic: str) -> None:
        with self.lock:
            self.incompatible_qos[topic] += 1

    def published(self, latency_ms: float | None, timings: dict[str, float]) -> None:
        """One set published; ``latency_ms`` None when its stamp cannot give one (see :meth:`stamp_anomaly`)."""
        with self.lock:
            self.processed += 1
            self.outputs.tick()
            if latency_ms is not None:
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
            out.update({f"stamp not used for latency: {kind}": str(n) for kind, n in sorted(self.stamp_anomalies.items())})
            out.update({f"incompatible QoS: {topic}": str(n) for topic, n in sorted(self.incompatible_qos.items())})
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
        refused = stats.refused()
        if stats.outputs.rate() > 0:
            level, message = DiagnosticStatus.OK, f"publishing at {values['output rate (Hz)']} Hz"
        elif refused is not None:
            kind, n, total = refused
            level = DiagnosticStatus.WARN
            message = (f"no depth published: every set refused in the last {RATE_WINDOW:g} s, mostly {kind} "
                       f"({n} of {total}): {stats.error_text.get(kind, '')}").rstrip(": ")
        else:
            level = DiagnosticStatus.WARN
            message = f"no depth published recently: {stats.state}"
    return DiagnosticStatus(level=level, name=name, hardware_id=hardware_id, message=message,
                            values=[KeyValue(key=k, value=v) for k, v in values.items()])
