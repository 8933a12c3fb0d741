"""The counting synchronizers: every message given to them is matched, evicted or pending, never lost."""
from __future__ import annotations

import types

import numpy as np
import pytest

from lumde_depth.ros.compat import message_filters as mf
from lumde_depth.ros.sync import counting_synchronizer

MS = 1_000_000


def _msg(ns: int | None) -> object:
    if ns is None:   # a message without a header: the approximate policy refuses it
        return types.SimpleNamespace()
    sec, nanosec = divmod(ns, 1_000_000_000)
    return types.SimpleNamespace(header=types.SimpleNamespace(stamp=types.SimpleNamespace(sec=sec, nanosec=nanosec)))


def _feed(sync_slop: float | None, arrivals: list[tuple[int, int | None]], inputs: int = 3, queue_size: int = 4):
    sources = [mf.SimpleFilter() for _ in range(inputs)]
    sync = counting_synchronizer(sources, queue_size, sync_slop)
    emitted = []
    sync.registerCallback(lambda *msgs: emitted.append(msgs))
    received = [0] * inputs
    for which, ns in arrivals:
        sources[which].signalMessage(_msg(ns))
        received[which] += 1
        c = sync.counts()
        assert [m + e + p for m, e, p in zip(c.matched, c.evicted, c.pending)] == received
    return sync.counts(), emitted, received


def test_clean_sets_are_all_matched():
    arrivals = [(i, 100 * MS * k + (10 * MS if i == 2 else 0)) for k in range(6) for i in range(3)]
    counts, emitted, _ = _feed(0.05, arrivals)
    assert counts.sets == len(emitted) == 6
    assert counts.matched == (6, 6, 6) and counts.evicted == (0, 0, 0) and counts.pending == (0, 0, 0)


def test_overflow_duplicates_and_leftovers_are_counted():
    """One input runs 6 sets ahead of a queue of 4; a stamp repeats; a set is never completed."""
    arrivals = [(0, 100 * MS * k) for k in range(6)] + [(0, 500 * MS)]          # 6 sets + a duplicate stamp
    arrivals += [(1, 100 * MS * k) for k in range(6)] + [(2, 100 * MS * k) for k in range(5)]
    counts, emitted, received = _feed(0.05, arrivals)
    assert received == [7, 6, 5]
    assert counts.sets == len(emitted) == 3        # 200, 300, 400 ms
    assert counts.matched == (3, 3, 3)
    # input 0: 0 and 100 ms pushed out, 500 ms replaced once; input 1: 0 and 100 ms pushed out by 400, 500 ms;
    # input 2: 0 and 100 ms wait for partners that are gone, 500 ms waits for its cloud
    assert counts.evicted == (3, 2, 0)
    assert counts.pending == (1, 1, 2)


@pytest.mark.parametrize("slop", [None, 0.05], ids=["exact", "approximate"])
def test_random_arrivals_satisfy_the_identity(slop):
    rng = np.random.default_rng(1)
    arrivals = [(int(rng.integers(3)), int(rng.integers(40)) * 100 * MS + int(rng.integers(3)) * 10 * MS)
                for _ in range(400)]
    if slop is not None:
        arrivals += [(1, None)] * 3
    counts, emitted, received = _feed(slop, arrivals)
    assert counts.sets == len(emitted) > 0
    assert all(m == counts.sets for m in counts.matched)
    assert all(p <= 4 for p in counts.pending)
    assert sum(received) == sum(counts.matched) + sum(counts.evicted) + sum(counts.pending)
