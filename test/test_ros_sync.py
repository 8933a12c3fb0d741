"""The counting synchronizers: every message given to them is matched, evicted or pending, never lost."""
from __future__ import annotations

import importlib.util
import types

import numpy as np
import pytest

from lumde_depth.ros import compat
from lumde_depth.ros.sync import counting_synchronizer

from conftest import ros_real_dir

pytestmark = pytest.mark.real_libs

MS = 1_000_000
Header = pytest.importorskip("std_msgs.msg", reason="ROS messages not installed").Header


def _msg(ns: int | None, rosbags: bool = False) -> object:
    """A message stamped ``ns`` with an rclpy header (what real message_filters accepts), or a rosbags-like
    duck-typed one; None: no header (the approximate policy refuses it)."""
    if ns is None:
        return types.SimpleNamespace()
    sec, nanosec = divmod(ns, 1_000_000_000)
    if rosbags:
        return types.SimpleNamespace(header=types.SimpleNamespace(stamp=types.SimpleNamespace(sec=sec, nanosec=nanosec)))
    header = Header()
    header.stamp.sec, header.stamp.nanosec = sec, nanosec
    return types.SimpleNamespace(header=header)


@pytest.fixture(params=[False, True], ids=["message_filters", "own"])
def own(request) -> bool:
    """message_filters' synchronizers (real where they work: the node's), or the package's own (offline tools')."""
    return request.param


def _feed(sync_slop: float | None, arrivals: list[tuple[int, int | None]], inputs: int = 3, queue_size: int = 4,
          own: bool = False):
    sources = [compat.SimpleFilter() for _ in range(inputs)]
    sync = counting_synchronizer(sources, queue_size, sync_slop, own=own)
    emitted = []
    sync.registerCallback(lambda *msgs: emitted.append(msgs))
    received = [0] * inputs
    for which, ns in arrivals:
        sources[which].signalMessage(_msg(ns))
        received[which] += 1
        c = sync.counts()
        assert [m + e + p for m, e, p in zip(c.matched, c.evicted, c.pending)] == received
    return sync.counts(), emitted, received


def test_clean_sets_are_all_matched(own):
    arrivals = [(i, 100 * MS * k + (10 * MS if i == 2 else 0)) for k in range(6) for i in range(3)]
    counts, emitted, _ = _feed(0.05, arrivals, own=own)
    assert counts.sets == len(emitted) == 6
    assert counts.matched == (6, 6, 6) and counts.evicted == (0, 0, 0) and counts.pending == (0, 0, 0)


def test_overflow_duplicates_and_leftovers_are_counted(own):
    """One input runs 6 sets ahead of a queue of 4; a stamp repeats; a set is never completed."""
    arrivals = [(0, 100 * MS * k) for k in range(6)] + [(0, 500 * MS)]          # 6 sets + a duplicate stamp
    arrivals += [(1, 100 * MS * k) for k in range(6)] + [(2, 100 * MS * k) for k in range(5)]
    counts, emitted, received = _feed(0.05, arrivals, own=own)
    assert received == [7, 6, 5]
    assert counts.sets == len(emitted) == 3        # 200, 300, 400 ms
    assert counts.matched == (3, 3, 3)
    # input 0: 0 and 100 ms pushed out, 500 ms replaced once; input 1: 0 and 100 ms pushed out by 400, 500 ms;
    # input 2: 0 and 100 ms wait for partners that are gone, 500 ms waits for its cloud
    assert counts.evicted == (3, 2, 0)
    assert counts.pending == (1, 1, 2)


@pytest.mark.parametrize("slop", [None, 0.05], ids=["exact", "approximate"])
def test_random_arrivals_satisfy_the_identity(slop, own):
    rng = np.random.default_rng(1)
    arrivals = [(int(rng.integers(3)), int(rng.integers(40)) * 100 * MS + int(rng.integers(3)) * 10 * MS)
                for _ in range(400)]
    if slop is not None:
        arrivals += [(1, None)] * 3
    counts, emitted, received = _feed(slop, arrivals, own=own)
    assert counts.sets == len(emitted) > 0
    assert all(m == counts.sets for m in counts.matched)
    assert all(p <= 4 for p in counts.pending)
    assert sum(received) == sum(counts.matched) + sum(counts.evicted) + sum(counts.pending)


def test_own_exact_sync_emits_only_the_oldest_complete_stamp_and_drops_older():
    """Current upstream (message_filters #238, Jazzy 4.11.10 / Kilted 7.1.5): one set per message at most."""
    a, b = compat.SimpleFilter(), compat.SimpleFilter()
    sync = compat.TimeSynchronizer([a, b], queue_size=10)
    got = []
    sync.registerCallback(lambda x, y: got.append(compat.convert.stamp_to_ns(x.header.stamp)))
    for ns in (1, 2, 3, 4):
        a.signalMessage(_msg(ns, rosbags=True))
    b.signalMessage(_msg(3, rosbags=True))      # 1 and 2 of input a can never be matched any more
    assert got == [3] and sorted(sync.queues[0]) == [4] and not sync.queues[1]
    b.signalMessage(_msg(2, rosbags=True))      # older than the last set: waits (and is dropped by the next set)
    b.signalMessage(_msg(4, rosbags=True))
    assert got == [3, 4] and not sync.queues[0] and not sync.queues[1]


def _upstream(folder: str) -> types.ModuleType:
    """message_filters of ``../shared/ros_real/<folder>`` loaded under its own name (sys.modules untouched)."""
    path = ros_real_dir() / folder / "message_filters" / "__init__.py"
    if not path.is_file():
        pytest.skip(f"upstream message_filters not found at {path} (set LUMDE_ROS_REAL to ../shared/ros_real)")
    pytest.importorskip("rclpy")
    spec = importlib.util.spec_from_file_location(f"upstream_message_filters_{folder}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("slop", [None, 0.05], ids=["exact", "approximate"])
def test_own_synchronizers_emit_what_upstream_emits(slop):
    """The same random stream through the package's own synchronizer (offline tools) and through upstream
    message_filters as released in January 2026 (rclpy stamps for upstream, rosbags-like ones for ours)."""
    upstream = _upstream("message_filters_2026_01")
    rng = np.random.default_rng(2)   # 10 Hz sets: 10 % of messages lost, some 10 ms off, delivered late and out of order
    sent = [(i, 100 * MS * k + int(rng.choice([0, 0, 0, 10])) * MS) for k in range(300) for i in range(3)
            if rng.random() > 0.1]
    arrivals = [sent[j] for j in np.argsort([ns + rng.uniform(0, 250) * MS for _, ns in sent], kind="stable")]
    emitted = {}
    for name, lib, rosbags in (("own", compat, True), ("upstream", upstream, False)):
        sources = [lib.SimpleFilter() for _ in range(3)]
        sync = lib.TimeSynchronizer(sources, 5) if slop is None else lib.ApproximateTimeSynchronizer(sources, 5, slop)
        sets = emitted[name] = []
        sync.registerCallback(lambda *msgs: sets.append(tuple(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec
                                                               for m in msgs)))
        for which, ns in arrivals:
            sources[which].signalMessage(_msg(ns, rosbags=rosbags))
    assert len(emitted["own"]) > 50
    assert emitted["own"] == emitted["upstream"]


def test_slop_changes_while_running(own):
    sources = [compat.SimpleFilter() for _ in range(2)]
    sync = counting_synchronizer(sources, 5, 0.05, own=own)
    sets = []
    sync.registerCallback(lambda *msgs: sets.append(msgs))
    sources[0].signalMessage(_msg(1000 * MS))
    sources[1].signalMessage(_msg(1150 * MS))      # 150 ms apart: no set at 50 ms
    assert not sets
    sync.set_slop(0.2)
    sources[0].signalMessage(_msg(2000 * MS))
    sources[1].signalMessage(_msg(2150 * MS))
    assert len(sets) == 1
