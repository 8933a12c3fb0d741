"""FramePool: the cameras of a rig side by side on threads, torch's threads shared out, results in order."""
from __future__ import annotations

import threading
import time

import pytest
import torch

from lumde_depth.inference import FramePool


@pytest.fixture
def two_torch_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _in_new_thread(fn):
    out = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join()
    return out[0]


def test_workers_share_the_callers_torch_threads_and_leave_everyone_elses_alone(two_torch_threads):
    with FramePool(2) as pool:
        assert (pool.workers, pool.threads) == (2, 1) and pool.describe() == "2 threads, 1 torch thread each"
        seen = pool.map(lambda _: (threading.current_thread().name, torch.get_num_threads()), range(8))
        assert {count for _name, count in seen} == {1}
        assert all(name.startswith("lumde_frame") for name, _count in seen)
        # the caller, and a thread started afterwards, still run torch with 2 threads
        assert torch.get_num_threads() == 2
        assert _in_new_thread(torch.get_num_threads) == 2


def test_frames_run_side_by_side_and_come_back_in_order(two_torch_threads):
    """Two items that each wait until both have started finish only when they run at once."""
    both = threading.Barrier(2, timeout=10.0)
    with FramePool(2) as pool:
        assert pool.map(lambda item: (both.wait(), item * item)[1], [3, 4]) == [9, 16]
        assert pool.map(lambda item: -item, range(7)) == [-i for i in range(7)]


def test_an_error_is_raised_after_every_frame_ran(two_torch_threads):
    done = []

    def work(item: int) -> int:
        if item == 0:
            raise ValueError("frame 0 is bad")
        time.sleep(0.05)
        done.append(item)
        return item

    with FramePool(2) as pool, pytest.raises(ValueError, match="frame 0 is bad"):
        pool.map(work, range(4))
    assert sorted(done) == [1, 2, 3]


def test_one_worker_or_a_closed_pool_is_a_plain_loop_in_the_calling_thread(two_torch_threads):
    here = [threading.current_thread()] * 3
    assert FramePool(1).map(lambda _: threading.current_thread(), range(3)) == here
    assert FramePool(1).describe() == "1 (frames in turn)"
    pool = FramePool(2)
    pool.close()
    assert pool.map(lambda _: threading.current_thread(), range(3)) == here


@pytest.mark.parametrize("frames, threads, expected", [(6, 2, (2, 1)), (6, 1, (1, 0)), (3, 8, (3, 2)),
                                                        (6, 16, (6, 2)), (1, 4, (1, 0))])
def test_for_frames_gives_one_worker_per_frame_within_the_thread_budget(frames, threads, expected):
    with FramePool.for_frames(frames, threads) as pool:
        assert (pool.workers, pool.threads) == expected


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="workers must be >= 1"):
        FramePool(0)
    with pytest.raises(ValueError, match="threads must be >= 0"):
        FramePool(2, -1)
