"""The node's C heap around frames of a new size (lumde_depth.ros.heap; glibc only, no ROS needed)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lumde_depth.ros import heap

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(heap._libc() is None or not hasattr(heap._libc(), "mallinfo2"),
                                reason="needs glibc >= 2.33 (mallopt, malloc_trim, mallinfo2)")


def test_a_frame_larger_than_every_recent_one_is_oversized():
    frames = heap.FrameHeap()
    sizes = [100, 100, 50, 100, 120, 120, 80]
    seen = []
    for nbytes in sizes:
        with frames.frame(nbytes) as oversized:
            seen.append(oversized)
    # the first frame, and 120 (larger than each before it); not 100 again after a 50, nor 120 twice
    assert seen == [True, False, False, False, True, False, False]
    for _ in range(heap.RECENT_FRAMES):
        with frames.frame(80):
            pass
    assert frames.oversized(100), "120 and 100 are no longer recent"


_PROBE = """
import ctypes, sys
import numpy as np
from lumde_depth.ros import heap

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = heap._libc()
libc.mallinfo2.restype = MallInfo2
frames = heap.FrameHeap()
with frames.frame(1000):
    pass
size = int(sys.argv[1])
with frames.frame(size):
    before = libc.mallinfo2()
    array = np.ones(16 << 20, np.uint8)   # more than the fresh process's free heap, less than 32 MB
    during = libc.mallinfo2()
    del array
    after = libc.mallinfo2()
print(during.arena - before.arena, during.hblkhd - before.hblkhd, after.hblkhd - before.hblkhd)
"""


@pytest.mark.parametrize("size, mapped", [(1000, False), (2000, True)], ids=["steady", "oversized"])
def test_an_oversized_frames_arrays_are_mapped_on_their_own(size, mapped):
    """A 16 MB array that the heap cannot hold yet: in a frame of a steady size the heap grows for it (and keeps
    it for the next frame: glibc's own behaviour below 32 MB); in an oversized frame it gets a mapping of its
    own, which is returned to the system when the array is freed, and the heap does not grow."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", _PROBE, str(size)], capture_output=True, text=True, check=True, env=env)
    heap_growth, mapped_during, mapped_after = map(int, out.stdout.split())
    if mapped:
        assert mapped_during >= 16 << 20 and heap_growth < 1 << 20 and mapped_after == 0, out.stdout
    else:
        assert heap_growth >= 16 << 20 and mapped_during == 0, out.stdout
