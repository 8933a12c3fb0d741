"""Crop / resize keep the camera matrix consistent with the pixels (checked by re-projection)."""
import numpy as np
import pytest

from lumde_depth.geometry import (
    bottom_center_box,
    crop,
    crop_intrinsics,
    project_points,
    resize_dense_depth,
    resize_image,
    resize_sparse_depth,
    scale_intrinsics,
)

K = np.array([[200.0, 0.0, 63.5], [0.0, 180.0, 47.5], [0.0, 0.0, 1.0]])
W, H = 128, 96


def _cloud(seed=0, n=4000):
    rng = np.random.default_rng(seed)
    z = rng.uniform(2, 40, n)
    return np.c_[rng.uniform(-0.3, 0.3, n) * z, rng.uniform(-0.25, 0.25, n) * z, z]


def test_scale_intrinsics_hand_values():
    K2 = scale_intrinsics(K, 0.5, 0.25)
    # u' = s (u + 0.5) - 0.5: the image centre (63.5 of 128 px) stays the centre (31.5 of 64 px)
    np.testing.assert_allclose(K2, [[100.0, 0.0, 31.5], [0.0, 45.0, 11.5], [0.0, 0.0, 1.0]])
    P = np.hstack([K, [[10.0], [2.0], [0.01]]])
    P2 = scale_intrinsics(P, 0.5, 0.5)
    assert P2.shape == (3, 4)
    np.testing.assert_allclose(P2[:, :3], scale_intrinsics(K, 0.5, 0.5))


def test_crop_matches_projection_with_cropped_K():
    pts = _cloud()
    full = project_points(pts, np.eye(4), K, W, H)
    box = (10, 20, 64, 80)
    cropped, K2 = crop(full, K, *box)
    np.testing.assert_allclose(K2, crop_intrinsics(K, 10, 20))
    np.testing.assert_array_equal(cropped, project_points(pts, np.eye(4), K2, 80, 64))
    with pytest.raises(ValueError, match="does not fit"):
        crop(full, K, 50, 0, 64, 80)


def test_bottom_center_box_is_kitti_dc_crop():
    assert bottom_center_box(375, 1242, 352, 1216) == (23, 13, 352, 1216)
    with pytest.raises(ValueError, match="larger"):
        bottom_center_box(300, 1242, 352, 1216)


def test_resize_sparse_depth_equals_fresh_projection_and_never_mixes():
    pts = _cloud(1)
    full = project_points(pts, np.eye(4), K, W, H)
    small, K2 = resize_sparse_depth(full, K, (48, 64))
    again = project_points(pts, np.eye(4), K2, 64, 48)
    # exact factor-2 downsampling: the point of each 2x2 block lands where a projection at half
    # resolution puts it, nearest first
    np.testing.assert_allclose(small, again, rtol=1e-6)
    assert set(np.unique(small[small > 0])) <= set(np.unique(full[full > 0]))  # no new values
    big, _ = resize_sparse_depth(full, K, (192, 256))  # upsampling keeps every point, spreads none
    assert np.count_nonzero(big) == np.count_nonzero(full)


def test_resize_dense_depth_nearest_and_image_bilinear():
    depth = np.zeros((4, 6), np.float32)
    depth[:, 3:] = 10.0  # a step edge
    small, _ = resize_dense_depth(depth, K, (2, 3))
    assert set(np.unique(small)) <= {0.0, 10.0}
    big, K2 = resize_dense_depth(depth, K, (8, 12))
    np.testing.assert_array_equal(big, np.repeat(np.repeat(depth, 2, 0), 2, 1))
    np.testing.assert_allclose(K2, scale_intrinsics(K, 2, 2))
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[:, W // 2:] = 200
    out, K3 = resize_image(rgb, K, (48, 64))
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    assert out[:, :30].max() == 0 and out[:, 34:].min() == 200
    flt, _ = resize_image(rgb[..., 0].astype(np.float32), K, (48, 64))
    assert flt.dtype == np.float32 and flt.shape == (48, 64)
    np.testing.assert_allclose(K3, scale_intrinsics(K, 0.5, 0.5))
