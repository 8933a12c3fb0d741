"""project_points / splat_nearest against hand-made cases and a per-point reference loop."""
import numpy as np
import pytest

from lumde_depth.geometry import backproject, pixel_indices, project_points, project_to_pixels, splat_nearest

K = np.array([[100.0, 0.0, 32.0], [0.0, 100.0, 24.0], [0.0, 0.0, 1.0]])
W, H = 64, 48


def _reference(points, T, K, width, height, min_depth=0.1, max_depth=np.inf):
    """Plain per-point loop: the definition project_points must match."""
    out = np.zeros((height, width), np.float32)
    for x in np.asarray(points, np.float64)[:, :3]:
        c = T[:3, :3] @ x + T[:3, 3]
        if not np.all(np.isfinite(c)) or not (min_depth <= c[2] <= max_depth):
            continue
        u, v = K[0, 0] * c[0] / c[2] + K[0, 2], K[1, 1] * c[1] / c[2] + K[1, 2]
        col, row = int(np.floor(u + 0.5)), int(np.floor(v + 0.5))
        if 0 <= col < width and 0 <= row < height and (out[row, col] == 0 or c[2] < out[row, col]):
            out[row, col] = c[2]
    return out


def test_single_point_lands_at_rounded_pixel():
    T = np.eye(4)
    depth = project_points(np.array([[0.1, -0.05, 2.0]]), T, K, W, H)
    # u = 100 * 0.05 + 32 = 37, v = 100 * -0.025 + 24 = 21.5 -> row 22 (round half up)
    assert depth.shape == (H, W) and depth.dtype == np.float32
    assert depth[22, 37] == pytest.approx(2.0)
    assert np.count_nonzero(depth) == 1


def test_zbuffer_keeps_nearest_regardless_of_order():
    pts = np.array([[0.0, 0.0, 5.0], [0.0, 0.0, 2.0], [0.0, 0.0, 9.0]])
    for order in ([0, 1, 2], [2, 1, 0], [1, 0, 2]):
        depth = project_points(pts[order], np.eye(4), K, W, H)
        assert depth[24, 32] == pytest.approx(2.0)
        assert np.count_nonzero(depth) == 1


def test_drops_invalid_points():
    pts = np.array([
        [0.0, 0.0, -3.0],        # behind
        [0.0, 0.0, 0.05],        # closer than min_depth
        [0.0, 0.0, 50.0],        # beyond max_depth
        [np.nan, 0.0, 4.0],      # NaN
        [np.inf, 0.0, 4.0],      # inf
        [10.0, 0.0, 1.0],        # outside the image (u = 1032)
        [0.0, 0.0, 3.0],         # the only valid one
    ])
    depth = project_points(pts, np.eye(4), K, W, H, max_depth=40.0)
    assert np.count_nonzero(depth) == 1 and depth[24, 32] == pytest.approx(3.0)


def test_accepts_P_and_extra_columns_and_float32():
    rng = np.random.default_rng(0)
    pts = np.c_[rng.uniform(-5, 5, (2000, 2)), rng.uniform(0.5, 30, 2000), rng.uniform(0, 1, 2000)]
    T = np.eye(4)
    T[:3, 3] = [0.1, -0.2, 0.3]
    P = np.hstack([K, [[45.0], [0.2], [0.003]]])  # 4th column ignored: T already ends in this camera
    a = project_points(pts.astype(np.float32), T, K, W, H)
    b = project_points(pts, T, P, W, H)
    assert np.count_nonzero(a) > 100
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_matches_reference_loop_random_cloud():
    rng = np.random.default_rng(1)
    pts = rng.uniform([-8, -6, -5], [8, 6, 30], (20000, 3))
    angles = rng.uniform(-0.3, 0.3, 3)
    from transforms3d.euler import euler2mat
    T = np.eye(4)
    T[:3, :3] = euler2mat(*angles)
    T[:3, 3] = rng.uniform(-1, 1, 3)
    got = project_points(pts, T, K, W, H, min_depth=0.5, max_depth=25.0)
    want = _reference(pts, T, K, W, H, min_depth=0.5, max_depth=25.0)
    assert np.count_nonzero(want) > 200
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_backproject_inverts_projection_at_pixel_centres():
    rng = np.random.default_rng(2)
    depth = np.where(rng.uniform(size=(H, W)) < 0.3, rng.uniform(1, 20, (H, W)), 0).astype(np.float32)
    xyz = backproject(depth, K).reshape(-1, 3)
    again = project_points(xyz[np.isfinite(xyz[:, 0])], np.eye(4), K, W, H)
    np.testing.assert_allclose(again, depth, rtol=1e-6)


def test_project_to_pixels_returns_point_indices():
    pts = np.array([[0.0, 0.0, -1.0], [0.0, 0.0, 4.0], [0.2, 0.0, 2.0]])
    rows, cols, z, index = project_to_pixels(pts, np.eye(4), K, W, H)
    assert sorted(index.tolist()) == [1, 2]
    assert dict(zip(index.tolist(), zip(rows.tolist(), cols.tolist()))) == {1: (24, 32), 2: (24, 42)}


def test_splat_nearest_empty_and_duplicates():
    assert not splat_nearest(np.array([], int), np.array([], int), np.array([], np.float32), 3, 4).any()
    out = splat_nearest(np.array([1, 1, 0]), np.array([2, 2, 3]), np.array([7.0, 3.5, 1.0]), 3, 4)
    assert out[1, 2] == 3.5 and out[0, 3] == 1.0 and np.count_nonzero(out) == 2
    with pytest.raises(ValueError, match="positive"):
        splat_nearest(np.array([0, 0]), np.array([0, 1]), np.array([2.0, -1.0]), 3, 4)


@pytest.mark.parametrize("kwargs, match", [
    ({"points": np.zeros((5, 2))}, "points must be"),
    ({"T_cam_lidar": np.eye(3)}, "4x4"),
    ({"K": np.eye(2)}, "3x3"),
    ({"K": np.zeros((3, 3))}, "focal length"),
    ({"width": 0}, "image size"),
    ({"min_depth": 5.0, "max_depth": 1.0}, "min_depth"),
])
def test_bad_input_names_the_problem(kwargs, match):
    args = {"points": np.ones((5, 3)), "T_cam_lidar": np.eye(4), "K": K, "width": W, "height": H, **kwargs}
    with pytest.raises(ValueError, match=match):
        project_points(**args)


def test_float32_prefilter_keeps_points_at_image_border_and_min_depth():
    # u = -0.49 -> column 0, u = W - 0.51 -> last column, v likewise; z just above min_depth
    z = np.array([10.0, 10.0, 10.0, 10.0, 0.1001])
    u = np.array([-0.49, W - 0.51, 5.0, -0.51, 32.0])
    v = np.array([-0.49, H - 0.51, H - 0.51, 3.0, 24.0])
    pts = np.c_[(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z].astype(np.float32)
    depth = project_points(pts, np.eye(4), K, W, H)
    assert depth[0, 0] > 0 and depth[H - 1, W - 1] > 0 and depth[H - 1, 5] > 0 and depth[24, 32] > 0
    assert np.count_nonzero(depth) == 4  # u = -0.51 is outside


def test_pixel_indices_are_numpys_nonzero_of_a_2d_mask():
    mask = np.random.default_rng(3).random((37, 53)) < 0.05
    rows, cols = pixel_indices(mask)
    expected = np.nonzero(mask)
    np.testing.assert_array_equal(rows, expected[0])
    np.testing.assert_array_equal(cols, expected[1])
    assert [a.size for a in pixel_indices(np.zeros((4, 5), bool))] == [0, 0]
    with pytest.raises(ValueError, match="2-D"):
        pixel_indices(np.zeros(5, bool))
