"""bytes_cache: per-camera grids kept within a byte budget, least recently used dropped first."""
from __future__ import annotations

import numpy as np

from lumde_depth.geometry import ray_grid
from lumde_depth.geometry.cache import bytes_cache
from lumde_depth.geometry.distortion import _ray_grid


def test_bytes_cache_keeps_what_fits_and_drops_the_least_recently_used():
    made = []

    @bytes_cache(max_bytes=3000)
    def grid(n: int) -> np.ndarray:
        made.append(n)
        return np.zeros(n, np.uint8)

    a, b = grid(1000), grid(1000 + 1)
    assert grid(1000) is a and grid(1001) is b and made == [1000, 1001]
    grid(1002)                      # 3003 bytes: the least recently used (1000) goes
    assert grid.cache_bytes() == 2003
    grid(1001)
    assert made == [1000, 1001, 1002]
    grid(1000)
    assert made == [1000, 1001, 1002, 1000]   # recomputed
    big = grid(5000)                # above the budget alone: kept, everything else dropped
    assert grid(5000) is big and grid.cache_bytes() == 5000
    grid.cache_clear()
    assert grid.cache_bytes() == 0


def test_the_ray_grids_of_a_six_camera_raw_rig_all_stay_cached():
    """functools.lru_cache(maxsize=4) recomputed every camera's grid on every frame of a rig of six raw
    cameras (a second each at 1920x1200); the byte budget keeps all six."""
    _ray_grid.cache_clear()
    D = np.array([-0.3, 0.1, 0.001, 0.0005, 0.0])
    Ks = [np.array([[300.0 + i, 0, 160], [0, 300.0 + i, 120], [0, 0, 1]]) for i in range(6)]
    first = [ray_grid(K, 320, 240, D) for K in Ks]
    assert all(ray_grid(K, 320, 240, D) is grid for K, grid in zip(Ks, first))
    assert _ray_grid.cache_bytes() == sum(g.nbytes for g in first)
