"""lumde_depth.viz: colour maps, error maps, panels, bars, cloud views."""
import numpy as np
import pytest
from PIL import Image

from lumde_depth import viz


def test_colorize_turbo_on_log_depth_invalid_black():
    depth = np.array([[0.5, 1.0, np.sqrt(80.0)], [80.0, 500.0, 0.0], [np.nan, -3.0, np.inf]], np.float32)
    out = viz.colorize(depth, 1.0, 80.0)
    assert out.shape == (3, 3, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], viz.TURBO[255])       # nearer than near: red end
    np.testing.assert_array_equal(out[0, 1], viz.TURBO[255])
    np.testing.assert_array_equal(out[0, 2], viz.TURBO[127])       # geometric middle: middle colour
    np.testing.assert_array_equal(out[1, 0], viz.TURBO[0])         # far: dark blue end
    np.testing.assert_array_equal(out[1, 1], viz.TURBO[0])
    assert not out[1, 2].any() and not out[2].any()                 # 0, NaN, negative, inf: black
    # any shape: a 1-D array of LiDAR depths gives (N, 3)
    assert viz.colorize(np.array([2.0, 4.0]), 1.0, 80.0).shape == (2, 3)
    with pytest.raises(ValueError, match="near < far"):
        viz.colorize(depth, 10.0, 5.0)


def test_colorize_matches_the_turbo_polynomial_on_log_depth():
    # Turbo's published polynomial fit (Mikhailov 2019), evaluated directly at x = log-position of the depth
    coeffs = np.array([[0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
                       [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
                       [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973]])
    depth = np.random.default_rng(0).uniform(2.0, 80.0, 500)
    x = (np.log(80.0) - np.log(depth)) / (np.log(80.0) - np.log(2.0))
    want = np.clip((x[:, None] ** np.arange(6)) @ coeffs.T, 0, 1) * 255
    got = viz.colorize(depth, 2.0, 80.0).astype(float)
    assert np.abs(got - want).max() <= 16     # a 256-entry table (index truncated): quantization of x only


def test_turbo_runs_blue_to_red():
    assert viz.TURBO.shape == (256, 3)
    assert viz.TURBO[40, 2] > 2 * viz.TURBO[40, 0] and viz.TURBO[230, 0] > 2 * viz.TURBO[230, 2]


def test_normalised_error_kitti_outlier_rule():
    gt = np.array([10.0, 100.0, 10.0, 0.0, 20.0])
    pred = np.array([11.5, 110.0, 0.0, 5.0, np.nan])
    n = viz.normalised_error(pred, gt)
    np.testing.assert_allclose(n[:3], [1.5 / 3.0, 10.0 / 5.0, 10.0 / 3.0])   # 3 m, or 5% of 100 m
    assert np.isnan(n[3])                                                    # no ground truth
    np.testing.assert_allclose(n[4], 20.0 / 3.0)                             # missing prediction = 0 m
    with pytest.raises(ValueError, match="differ in shape"):
        viz.normalised_error(pred[:2], gt)


def test_error_colours_bins():
    gt = np.full((1, 5), 20.0)
    gt[0, 4] = 0.0
    pred = gt + np.array([[0.0, 3.0 * 0.5, 3.0 * 1.0, 3.0 * 20.0, 1.0]])
    out = viz.error_colours(pred, gt)
    np.testing.assert_array_equal(out[0, 0], viz.ERROR_COLOURS[0])
    np.testing.assert_array_equal(out[0, 1], viz.ERROR_COLOURS[4])   # n = 1/2: lower edge of bin 4
    np.testing.assert_array_equal(out[0, 2], viz.ERROR_COLOURS[5])   # n = 1: an outlier, first warm bin
    np.testing.assert_array_equal(out[0, 3], viz.ERROR_COLOURS[9])
    assert not out[0, 4].any()


def test_overlay_points_dots_nearest_wins():
    rgb = np.full((10, 12, 3), 200, np.uint8)
    sparse = np.zeros((10, 12), np.float32)
    sparse[2, 2], sparse[3, 3], sparse[8, 10] = 40.0, 5.0, 10.0
    out = viz.overlay_points(rgb, sparse, 1.0, 80.0, radius=1)
    near = viz.colorize(np.float32([5.0]), 1.0, 80.0)[0]
    np.testing.assert_array_equal(out[2, 2], near)               # overlapping dots: the 5 m point wins
    np.testing.assert_array_equal(out[1, 1], viz.colorize(np.float32([40.0]), 1.0, 80.0)[0])
    np.testing.assert_array_equal(out[9, 11], viz.colorize(np.float32([10.0]), 1.0, 80.0)[0])
    np.testing.assert_array_equal(out[6, 6], [70, 70, 70])        # dimmed grey camera image
    assert (viz.overlay_points(rgb, sparse, 1.0, 80.0, radius=0) != [70, 70, 70]).any(axis=2).sum() == 3
    with pytest.raises(ValueError, match="same size"):
        viz.overlay_points(rgb, sparse[:5], 1.0, 80.0)


def test_label_grid_stack():
    a = np.full((20, 30, 3), 100, np.uint8)
    labelled = viz.label(a, "x")
    assert (labelled[:5, :5] != 100).any() and (labelled[15:, 20:] == 100).all()
    g = viz.grid([a, a, a], columns=2, gap=2)
    assert g.shape == (42, 62, 3)
    assert (g[22:, 32:] == 0).all() and (g[22:, :30] == 100).all()    # third panel, empty fourth slot
    with pytest.raises(ValueError, match="one size"):
        viz.grid([a, a[:10]], columns=2)
    s = viz.stack([a, np.ones((5, 50, 3), np.uint8)], gap=1)
    assert s.shape == (26, 50, 3) and (s[:20, 30:] == 0).all()
    assert viz.resize(a, 0.5).shape == (10, 15, 3)


def test_colour_bars():
    bar = viz.colour_bar(400, 1.0, 100.0, height=30)
    assert bar.shape == (30, 400, 3)
    left = int(np.argmax(bar[2].any(axis=1)))          # the strip starts after the title
    assert 10 < left < 100 and (bar[20:, :left] != 0).any()   # the title is drawn there
    x = left + 3 * (399 - left) // 4                   # log scale: 3/4 of the way from 1 m to 100 m is ~31.6 m
    want = viz.colorize(np.float32([10 ** 1.5]), 1.0, 100.0)[0].astype(int)
    assert np.abs(bar[2, x].astype(int) - want).max() <= 16
    far = viz.colorize(np.float32([100.0]), 1.0, 100.0)[0].astype(int)
    assert np.abs(bar[2, -3].astype(int) - far).max() <= 16   # (the last column holds the 100 m tick)
    err = viz.error_bar(300, height=30)
    assert err.shape == (30, 300, 3)
    left = int(np.argmax(err[2].any(axis=1)))
    np.testing.assert_array_equal(err[2, left + 2], viz.ERROR_COLOURS[0])
    np.testing.assert_array_equal(err[2, -2], viz.ERROR_COLOURS[-1])
    with pytest.raises(ValueError, match="wider"):
        viz.colour_bar(20, 1.0, 100.0)


def test_ortho_view_nearest_key_wins():
    u = np.array([1.05, 1.05, 5.0, 100.0])
    v = np.array([2.05, 2.05, 0.5, 1.0])
    key = np.array([3.0, 1.0, 0.0, 0.0])
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 9, 9]], np.uint8)
    out = viz.ortho_view(u, v, key, colours, (0.0, 10.0), (0.0, 4.0), px_per_m=10.0)
    assert out.shape == (40, 100, 3)
    np.testing.assert_array_equal(out[19, 10], [0, 255, 0])       # row = (4 - 2.05) * 10, col = 1.05 * 10
    np.testing.assert_array_equal(out[35, 50], [0, 0, 255])
    assert (out.reshape(-1, 3).any(axis=1)).sum() == 2            # the point outside the range is dropped


def test_cloud_views_place_points():
    # a wall 20 m ahead (camera optical frame), 2 m to the left, plus NaN rows that must be skipped
    ys, zs = np.meshgrid(np.linspace(-1, 1, 21), [20.0])
    xyz = np.stack([np.full(ys.size, -2.0), ys.ravel(), zs.ravel()], 1)
    xyz = np.concatenate([xyz, np.full((5, 3), np.nan)])
    rgb = np.tile(np.uint8([[255, 0, 255]]), (len(xyz), 1))
    views = viz.cloud_views(xyz, rgb, forward=(0.0, 40.0), lateral=(-10.0, 10.0), up=(-2.0, 3.0), px_per_m=5.0)
    assert views.shape[1] == 200
    rows, cols = np.nonzero((views == [255, 0, 255]).all(axis=2))
    assert set(cols) == {100}                                       # 20 m forward at 5 px/m, in both views
    rows = np.unique(rows)
    bird, side = rows[0], rows[1:]
    assert len(side) == 11 and np.all(np.diff(side) == 1)          # side view: up from -1 to 1 m, 5 px/m
    # bird's-eye: 2 m left of the 10 m half-width -> row 40 of 100; side: 1 m up of 3 m -> row 10 of 25
    assert side[0] - bird == (100 - 40) + 2 + 18 + 10
    with pytest.raises(ValueError, match="same points"):
        viz.cloud_views(xyz, rgb[:3])


def test_save_png_roundtrip(tmp_path):
    image = np.random.default_rng(1).integers(0, 255, (8, 9, 3), dtype=np.uint8)
    path = viz.save_png(tmp_path / "a" / "b.png", image)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), image)
