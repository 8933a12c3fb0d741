"""Lens distortion: the models against their formulas, undistortion round trips, projection and
back-projection through the distortion, rectification, and real distorted frames (PJLab)."""
import math

import numpy as np
import pytest

from lumde_depth.geometry import (Rectifier, backproject, distort, organized_cloud, project_points,
                                  project_to_pixels, ray_grid, rectify_map, undistort, view_radius)
from lumde_depth.geometry.distortion import coefficients, normalized_to_pixels

PLUMB = [-0.102933, -0.040925, 0.00057951, -0.00419933, 0.429959]           # PJLab ours/3
RATIONAL = [0.5, -0.2, 0.001, -0.002, 0.03, 0.8, -0.1, 0.02]
FISHEYE = [0.05, -0.01, 0.003, -0.0005]
K = np.array([[2117.31, 0.0, 924.681], [0.0, 2113.29, 656.457], [0.0, 0.0, 1.0]])
W, H = 1920, 1200


def _opencv_radtan(x, y, D):
    """OpenCV's projectPoints distortion, written out scalar by scalar as in its documentation."""
    k1, k2, p1, p2, k3, k4, k5, k6 = (list(D) + [0.0] * 8)[:8]
    r2 = x * x + y * y
    a = (1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3) / (1 + k4 * r2 + k5 * r2 ** 2 + k6 * r2 ** 3)
    return x * a + 2 * p1 * x * y + p2 * (r2 + 2 * x * x), y * a + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y


def _opencv_fisheye(x, y, D):
    r = math.hypot(x, y)
    th = math.atan(r)
    thd = th * (1 + D[0] * th ** 2 + D[1] * th ** 4 + D[2] * th ** 6 + D[3] * th ** 8)
    return x * thd / r, y * thd / r


@pytest.mark.parametrize("model,D,ref", [("plumb_bob", PLUMB, _opencv_radtan), ("rational_polynomial", RATIONAL,
                                                                              _opencv_radtan),
                                         ("equidistant", FISHEYE, _opencv_fisheye)])
def test_distort_matches_the_formulas(model, D, ref):
    pts = np.array([[0.3, -0.2], [-0.45, 0.28], [0.01, 0.02], [0.0, -0.5]])
    got = distort(pts, D, model)
    np.testing.assert_allclose(got, [ref(x, y, D) for x, y in pts], rtol=0, atol=1e-15)
    assert distort(np.zeros((1, 2)), D, model).tolist() == [[0.0, 0.0]]


@pytest.mark.parametrize("model,D", [("plumb_bob", PLUMB), ("rational_polynomial", RATIONAL),
                                     ("equidistant", FISHEYE)])
def test_undistort_inverts_distort(model, D):
    # every pixel of a 1920x1200 raw image (every 7th): distort(undistort(pixel)) is the pixel again
    uv = np.stack(np.meshgrid(np.arange(0, W, 7.0), np.arange(0, H, 7.0)), -1)
    xy_d = (uv - K[:2, 2]) / np.diag(K)[:2]
    xy = undistort(xy_d, D, model)
    assert np.isfinite(xy).all()
    np.testing.assert_allclose(distort(xy, D, model), xy_d, rtol=0, atol=1e-12)
    # and the other way round inside the field of view
    rng = np.random.default_rng(1)
    pts = rng.uniform(-0.5, 0.5, (5000, 2))
    np.testing.assert_allclose(undistort(distort(pts, D, model), D, model), pts, rtol=0, atol=1e-11)


def test_coefficients_are_checked():
    assert coefficients([0, 0, 0, 0, 0], "plumb_bob") is None and coefficients(None, "") is None
    np.testing.assert_array_equal(coefficients([0.1, 0.2, 0.0, 0.0], "plumb_bob"), [0.1, 0.2, 0, 0, 0])
    with pytest.raises(ValueError, match="distortion_model is ''"):
        coefficients([0.1, 0.0, 0.0, 0.0, 0.0], "")
    with pytest.raises(ValueError, match="rational_polynomial"):
        coefficients(RATIONAL, "plumb_bob")
    with pytest.raises(ValueError, match="equidistant"):
        coefficients([0.1, 0.2, 0.3, 0.4], "fisheye")
    with pytest.raises(ValueError, match="NaN"):
        coefficients([np.nan, 0, 0, 0, 0], "plumb_bob")


def _reference(points, T, K, D, model, width, height):
    """Per-point loop with the scalar formula: the definition of projecting through the distortion."""
    out = np.zeros((height, width), np.float32)
    ref = _opencv_fisheye if model == "equidistant" else _opencv_radtan
    for x in points:
        c = T[:3, :3] @ x + T[:3, 3]
        if not 0.1 <= c[2]:
            continue
        xd, yd = ref(c[0] / c[2], c[1] / c[2], D)
        col, row = int(np.floor(K[0, 0] * xd + K[0, 2] + 0.5)), int(np.floor(K[1, 1] * yd + K[1, 2] + 0.5))
        if 0 <= col < width and 0 <= row < height and (out[row, col] == 0 or c[2] < out[row, col]):
            out[row, col] = c[2]
    return out


@pytest.mark.parametrize("model,D", [("plumb_bob", PLUMB), ("equidistant", FISHEYE)])
def test_project_points_through_distortion_matches_reference(model, D):
    rng = np.random.default_rng(0)
    pts = np.c_[rng.uniform(-12, 12, (3000, 2)), rng.uniform(1, 30, 3000)]
    T = np.eye(4)
    T[:3, 3] = [0.1, -0.2, 0.3]
    w, h = 240, 150
    Ks = K.copy()
    Ks[:2] /= 8
    got = project_points(pts, T, Ks, w, h, D=D, distortion_model=model)
    np.testing.assert_array_equal(got, _reference(pts, T, Ks, D, model, w, h))
    assert np.count_nonzero(got) > 100
    assert not np.array_equal(got, project_points(pts, T, Ks, w, h))   # the distortion moved points
    # all-zero D is the pinhole projection exactly
    np.testing.assert_array_equal(project_points(pts, T, Ks, w, h, D=np.zeros(5)), project_points(pts, T, Ks, w, h))


def test_fold_back_does_not_wrap_far_points_into_the_image():
    # k1 < 0 strong enough that the radial model folds (r_d decreases) beyond r = 1/sqrt(3 * 0.4) = 0.91
    D, Kf, w, h = [-0.4, 0.0, 0.0, 0.0, 0.0], np.array([[200.0, 0, 160], [0, 200, 120], [0, 0, 1]]), 320, 240
    x = 1.7   # far outside the field of view (r = 1.7 > fold) ...
    xd, _ = _opencv_radtan(x, 0.0, D)
    assert 0 <= 200 * xd + 160 < w            # ... but OpenCV's formula maps it into the image
    assert view_radius(Kf, D, "plumb_bob", w, h) == pytest.approx(1 / math.sqrt(1.2), rel=1e-3)
    depth = project_points(np.array([[2 * x, 0.0, 2.0]]), np.eye(4), Kf, w, h, D=D)
    assert not depth.any()


def test_backproject_inverts_projection_through_distortion():
    Ks, w, h = K.copy(), 240, 150
    Ks[:2] /= 8
    # a point on the ray of every 10th pixel, at varying depth: projected, it lands on that pixel,
    # and back-projecting the depth image gives the point again
    rows, cols = np.meshgrid(np.arange(0, h, 10), np.arange(0, w, 10), indexing="ij")
    uv = np.stack([cols, rows], -1).reshape(-1, 2).astype(float)
    xy = undistort((uv - Ks[:2, 2]) / np.diag(Ks)[:2], PLUMB, "plumb_bob")
    z = np.linspace(2, 40, len(xy))
    pts = np.c_[xy * z[:, None], z]
    depth = project_points(pts, np.eye(4), Ks, w, h, D=PLUMB)
    assert np.count_nonzero(depth) == len(pts)
    xyz = backproject(depth, Ks, D=PLUMB)
    np.testing.assert_allclose(xyz[rows.ravel(), cols.ravel()], pts, rtol=1e-5, atol=1e-5)
    assert np.isnan(xyz[depth == 0]).all()
    # the pinhole back-projection of the same depth is off at the edges (what the node did before)
    off = np.linalg.norm(backproject(depth, Ks)[rows.ravel(), cols.ravel()] - pts, axis=1)
    assert off.max() > 0.5
    # organized_cloud (the node's depth/points) goes along the same rays, also decimated
    cloud = organized_cloud(depth, Ks, D=PLUMB, decimation=2)
    full = xyz[::2, ::2]
    for i, c in enumerate("xyz"):
        np.testing.assert_allclose(cloud[c], full[..., i], rtol=1e-6, equal_nan=True)


def test_ray_grid_rotation():
    R = np.array([[math.cos(0.1), 0, math.sin(0.1)], [0, 1, 0], [-math.sin(0.1), 0, math.cos(0.1)]])
    rays = ray_grid(K, 64, 48, R=R)
    plain = ray_grid(K, 64, 48)
    np.testing.assert_allclose(rays, plain @ R.astype(np.float32), rtol=1e-6)
    assert not rays.flags.writeable


def test_rectify_map_and_rectifier():
    Ks, w, h = K.copy(), 240, 150
    Ks[:2] /= 8
    P = np.hstack([Ks, np.zeros((3, 1))])
    uv = rectify_map(Ks, PLUMB, "plumb_bob", w, h, P)
    # the rectified pixel's ray, distorted, is the raw pixel it samples
    xy = (np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1) - Ks[:2, 2]) / np.diag(Ks)[:2]
    np.testing.assert_allclose(uv, distort(xy, PLUMB) * np.diag(Ks)[:2] + Ks[:2, 2], atol=1e-9)
    # rectifying a raw image of a projected LiDAR-like pattern puts each point where P projects it
    rng = np.random.default_rng(3)
    pts = np.c_[rng.uniform(-4, 4, (400, 2)), rng.uniform(5, 20, 400)]
    r, c, _, idx = project_to_pixels(pts, np.eye(4), Ks, w, h, D=PLUMB)
    raw_img = np.zeros((h, w, 3), np.uint8)
    for dr in (-1, 0, 1):   # 3x3 blobs so bilinear sampling sees them
        for dc in (-1, 0, 1):
            raw_img[np.clip(r + dr, 0, h - 1), np.clip(c + dc, 0, w - 1)] = 255
    rect = Rectifier(Ks, PLUMB, "plumb_bob", w, h, P)(raw_img)
    assert rect.dtype == np.uint8 and rect.shape == raw_img.shape
    rr, cc, _, _ = project_to_pixels(pts[idx], np.eye(4), P, w, h)
    assert (rect[rr, cc, 0] > 100).mean() > 0.97


def _depth_edge_distances(frame, scales):
    """Mean distance (px) from the LiDAR's depth edges (foreground points where the range along a scan
    line jumps by > 1 m) to the nearest image edge (top 10 % gradient), over the points the distortion
    moves by >= 6 px (the outer part of the image), projected with ``scale * D`` for each scale."""
    from scipy import ndimage

    smooth = ndimage.gaussian_filter(frame.rgb().mean(-1, dtype=np.float32), 1.0)
    grad = np.hypot(ndimage.sobel(smooth, 0), ndimage.sobel(smooth, 1))
    dist = ndimage.distance_transform_edt(grad <= np.percentile(grad, 90))
    xyz = frame.xyz().astype(np.float64)
    line = np.round(np.degrees(np.arctan2(xyz[:, 2], np.hypot(xyz[:, 0], xyz[:, 1]))) / 0.15)   # scan line
    order = np.lexsort((np.arctan2(xyz[:, 1], xyz[:, 0]), line))
    rng, line = np.linalg.norm(xyz[order], axis=1), line[order]
    jump = np.zeros_like(rng)
    same = line[1:] == line[:-1]
    jump[:-1] = np.where(same, rng[1:] - rng[:-1], 0)
    jump[1:] = np.maximum(jump[1:], np.where(same, rng[:-1] - rng[1:], 0))
    edge = xyz[order[jump > 1.0]]
    cam = edge @ frame.T_cam_lidar[:3, :3].T + frame.T_cam_lidar[:3, 3]
    xy = cam[:, :2] / cam[:, 2:]
    edge = edge[np.hypot(*(distort(xy, frame.D) - xy).T) * frame.K[0, 0] >= 6]
    out = {}
    for s in scales:
        r, c, _, _ = project_to_pixels(edge, frame.T_cam_lidar, frame.K, W, H, D=s * frame.D)
        out[s] = float(dist[r, c].mean())
    return out


@pytest.mark.parametrize("name", ["lidar2camera/auto_calib_v2.0/data/ours/3", "lidar2camera/manual_calib/data"])
def test_pjlab_lidar_meets_image_edges_through_the_distortion(shared_data, name):
    """On the real raw PJLab images, the LiDAR's depth edges land nearer the image's edges when
    projected through the calibrated D than without it, or with half or 1.5 times D.
    (ours/1 and ours/2 hold OpenCalib's auto-calibration *starting* extrinsic, 8-14 px off everywhere.)"""
    from lumde_depth.data.opencalib import read_frame

    frame = read_frame(shared_data / "pjlab_lidar2camera" / name)
    dist = _depth_edge_distances(frame, (1.0, 0.0, 0.5, 1.5))
    assert dist[1.0] < 0.85 * dist[0.0] and dist[1.0] == min(dist.values()), dist


def test_ray_grid_of_a_large_raw_image_is_the_undistorted_ray():
    """1920x1200 (solved at knots, interpolated): each ray, distorted, is its pixel to 1e-6 (0.002 px)."""
    rays = ray_grid(K, W, H, PLUMB, "plumb_bob")
    assert rays.shape == (H, W, 3) and np.all(rays[..., 2] == 1)
    rng = np.random.default_rng(2)
    rows, cols = rng.integers(0, H, 3000), rng.integers(0, W, 3000)
    pixel = normalized_to_pixels(distort(rays[rows, cols, :2].astype(np.float64), PLUMB), K)
    np.testing.assert_allclose(pixel, np.c_[cols, rows], atol=0.005)
    np.testing.assert_allclose(ray_grid(K, W, H, PLUMB, "plumb_bob", decimation=3), rays[::3, ::3], atol=2e-6)
