"""support_mask: depth is supported inside the LiDAR's field of view, near its points and unsaturated."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lumde_depth.data.depth_io import read_velodyne_bin
from lumde_depth.geometry import project_points, read_kitti_object_calib
from lumde_depth.geometry.support import LidarCoverage, support_mask, unsaturated

H, W, F = 120, 200, 150.0


def _rings(rows=range(40, 120, 8), step: int = 3, depth: float = 20.0) -> np.ndarray:
    """A sparse map like a LiDAR's: a point every ``step`` columns on every ring row."""
    sparse = np.zeros((H, W), np.float32)
    sparse[np.ix_(list(rows), list(range(0, W, step)))] = depth
    return sparse


def test_coverage_measures_ring_spacing_and_azimuth_step():
    coverage = LidarCoverage(_rings())
    assert coverage.spacing == (8.0, 3.0)
    assert coverage.top[0] == 40 and coverage.bottom[0] == 112 and coverage.top[1] == H   # column 1 is empty


def test_above_the_top_ring_and_below_the_bottom_one_is_unsupported():
    sparse = _rings()
    support = support_mask(np.full((H, W), 20.0, np.float32), sparse, F)
    assert not support[:40].any() and not support[113:].any()
    assert support[40:113].all()   # between rings (8 px apart) and between azimuth steps: supported


def test_a_hole_in_the_scan_is_unsupported_at_its_centre_and_scales_with_depth():
    sparse = _rings(range(0, H, 6))
    sparse[30:90, 60:140] = 0   # a 60 x 80 px hole (a black car, a window)
    far = support_mask(np.full((H, W), 20.0, np.float32), sparse, F)        # 1 m at 20 m = 7.5 px
    assert not far[60, 100] and far[60, 62] and far[5, 100]
    near = support_mask(np.full((H, W), 2.0, np.float32), sparse, F)        # 1 m at 2 m = 75 px
    assert near[60, 100]
    assert support_mask(np.full((H, W), 20.0, np.float32), sparse, F, max_gap=0.0)[60, 100]   # test off


def test_columns_without_points_nearby_are_outside_the_field_of_view():
    sparse = _rings()
    sparse[:, 150:] = 0
    support = support_mask(np.full((H, W), 20.0, np.float32), sparse, F)
    assert support[60, 140].all() and not support[:, 160:].any()


def test_saturated_depth_is_unsupported():
    sparse = _rings()
    depth = np.full((H, W), 20.0, np.float32)
    depth[60, 10], depth[62, 10] = 90.0, 0.5
    support = support_mask(depth, sparse, F, depth_range=(0.5, 90.0))
    assert not support[60, 10] and not support[62, 10] and support[61, 10]
    values = np.array([0.0, 0.2, 89.9, 90.0, 120.0], np.float32)   # 120 m: a far LiDAR point past the clip
    assert unsaturated(values, (0.0, 90.0)).tolist() == [True, True, True, False, True]
    assert unsaturated(values, (0.0, np.inf)).all()


def test_no_points_supports_nothing_and_bad_shapes_are_refused():
    assert not support_mask(np.ones((H, W), np.float32), np.zeros((H, W), np.float32), F).any()
    with pytest.raises(ValueError, match="same"):
        support_mask(np.ones((H, W), np.float32), np.zeros((H, W + 1), np.float32), F)


def test_real_kitti_frame_is_unsupported_above_the_lidar(shared_data):
    root = shared_data / "kitti_object" / "training"
    for frame in ("000000", "000003"):
        width, height = Image.open(root / "image_2" / f"{frame}.png").size
        calib = read_kitti_object_calib(root / "calib" / f"{frame}.txt")
        sparse = project_points(read_velodyne_bin(root / "velodyne" / f"{frame}.bin"), calib.T_cam_lidar, calib.P,
                                width, height)
        depth = np.full((height, width), 15.0, np.float32)
        with np.errstate(all="raise"):   # no raw numpy warnings on real data
            support = support_mask(depth, sparse, calib.P[0, 0])
        top_ring = (sparse > 0).argmax(axis=0).min()
        assert not support[:top_ring].any()              # nothing above the highest point of the scan
        assert 0.25 < (~support).mean() < 0.5            # a quarter to half of the image (mostly above the scan)
        assert support[sparse > 0].mean() > 0.99         # the LiDAR pixels themselves are supported
