"""Lens distortion of a raw (unrectified) camera image: the models of ROS ``CameraInfo``.

All functions work on *normalized* image coordinates ``(x, y) = (X / Z, Y / Z)`` of a point in the
camera optical frame, as OpenCV and ``image_geometry`` do; a raw pixel is ``K @ (x_d, y_d, 1)`` with
``(x_d, y_d) = distort((x, y))``. Models (``CameraInfo.distortion_model``, coefficient order of ``D``):

- ``plumb_bob`` (OpenCV radial-tangential, 5 coefficients ``k1 k2 p1 p2 k3``; 4 are accepted, ``k3 = 0``),
  ``rational_polynomial`` (8: ``k1 k2 p1 p2 k3 k4 k5 k6``)::

      r2 = x^2 + y^2
      a  = (1 + k1 r2 + k2 r2^2 + k3 r2^3) / (1 + k4 r2 + k5 r2^2 + k6 r2^3)
      x_d = x a + 2 p1 x y + p2 (r2 + 2 x^2)
      y_d = y a + p1 (r2 + 2 y^2) + 2 p2 x y

- ``equidistant`` (OpenCV ``fisheye``, 4 coefficients ``k1 k2 k3 k4``)::

      theta = atan(r),  theta_d = theta (1 + k1 theta^2 + k2 theta^4 + k3 theta^6 + k4 theta^8)
      (x_d, y_d) = (theta_d / r) (x, y)

:func:`undistort` inverts :func:`distort` by Newton's method with the analytic Jacobian (a few
iterations reach float64 round-off inside the image; OpenCV's fixed-point iteration stops at about
1e-3 px near the corners of strongly distorted lenses). Points where it does not converge (outside the
region where the model is invertible) come back NaN.
"""
from __future__ import annotations

import functools

import numpy as np

from lumde_depth.geometry.cache import bytes_cache

#: Coefficient count of each model (``D`` is zero-padded to it); the order is ROS's / OpenCV's.
MODELS: dict[str, int] = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}
NEWTON_ITERATIONS = 20
NEWTON_TOLERANCE = 1e-12   # normalized units (about 1e-9 px at f = 1000 px)
EXACT_GRID_PIXELS = 1 << 18   # ray grids up to this size are undistorted pixel by pixel, larger ones ...
GRID_KNOT_STEP = 8            # ... exactly every 8 pixels and interpolated between
GRID_CACHE_BYTES = 512 << 20
"""Budget of the per-camera grids kept (ray grids here, rectification maps in :mod:`.rectify`, each its own):
a rig of six 1936x1216 raw cameras takes 170 MB of rays, one 4096x3000 camera 147 MB."""


def coefficients(D: np.ndarray | list[float] | None, model: str) -> np.ndarray | None:
    """``D`` checked against ``model`` and zero-padded to the model's length (float64); None when
    every coefficient is zero (a pinhole camera: nothing to distort). ``model`` may be empty only then."""
    D = np.zeros(0) if D is None else np.asarray(D, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(D)):
        raise ValueError(f"distortion coefficients D contain NaN or inf: {D.tolist()}")
    if not D.any():
        return None
    if model not in MODELS:
        raise ValueError(f"the lens distortion D has {D.size} coefficients ({np.count_nonzero(D)} nonzero) but "
                         f"distortion_model is {model!r}: set it to one of {', '.join(MODELS)} (ROS names; "
                         "OpenCV's 'fisheye' is 'equidistant')")
    size = MODELS[model]
    if D.size > size and D[size:].any():
        raise ValueError(f"distortion_model {model!r} takes {size} coefficients, D has {D.size} "
                         f"({D.tolist()}): for OpenCV's 8-coefficient model use 'rational_polynomial'; "
                         "thin-prism and tilt terms (12 or 14 coefficients) are not supported")
    if model == "equidistant" and D.size < size:
        raise ValueError(f"distortion_model 'equidistant' takes 4 coefficients k1 k2 k3 k4, D has {D.size}")
    out = np.zeros(size)
    out[:min(size, D.size)] = D[:size]
    return out


def _radtan(x: np.ndarray, y: np.ndarray, D: np.ndarray, jacobian: bool):
    k1, k2, p1, p2, k3 = D[:5]
    k4, k5, k6 = D[5:8] if D.size == 8 else (0.0, 0.0, 0.0)
    r2 = x * x + y * y
    num = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    den = 1 + r2 * (k4 + r2 * (k5 + r2 * k6))
    a = num / den
    xy = x * y
    xd = x * a + 2 * p1 * xy + p2 * (r2 + 2 * x * x)
    yd = y * a + p1 * (r2 + 2 * y * y) + 2 * p2 * xy
    if not jacobian:
        return xd, yd
    da = ((k1 + r2 * (2 * k2 + 3 * k3 * r2)) * den - num * (k4 + r2 * (2 * k5 + 3 * k6 * r2))) / (den * den)
    off = 2 * xy * da + 2 * p1 * x + 2 * p2 * y           # d x_d / dy = d y_d / dx
    return xd, yd, a + 2 * x * x * da + 2 * p1 * y + 6 * p2 * x, off, off, a + 2 * y * y * da + 6 * p1 * y + 2 * p2 * x


def _theta_d(theta: np.ndarray, D: np.ndarray) -> np.ndarray:
    t2 = theta * theta
    return theta * (1 + t2 * (D[0] + t2 * (D[1] + t2 * (D[2] + t2 * D[3]))))


def distort(xy: np.ndarray, D: np.ndarray | list[float] | None, model: str = "plumb_bob") -> np.ndarray:
    """Distorted normalized coordinates of undistorted ones: ``(..., 2)`` -> ``(..., 2)`` float64."""
    xy = np.asarray(xy, dtype=np.float64)
    D = coefficients(D, model)
    if D is None:
        return xy.copy()
    x, y = xy[..., 0], xy[..., 1]
    if model == "equidistant":
        r = np.hypot(x, y)
        theta = np.arctan(r)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(r > 1e-12, _theta_d(theta, D) / r, 1.0)
        return xy * scale[..., None]
    return np.stack(_radtan(x, y, D, jacobian=False), axis=-1)


def undistort(xy_d: np.ndarray, D: np.ndarray | list[float] | None, model: str = "plumb_bob") -> np.ndarray:
    """Undistorted normalized coordinates of distorted ones (inverse of :func:`distort`), NaN where
    Newton's method does not converge to within :data:`NEWTON_TOLERANCE`."""
    xy_d = np.asarray(xy_d, dtype=np.float64)
    D = coefficients(D, model)
    if D is None:
        return xy_d.copy()
    if model == "equidistant":
        return _undistort_equidistant(xy_d, D)
    xd, yd = xy_d[..., 0], xy_d[..., 1]
    x, y = xd.copy(), yd.copy()
    tolerance = NEWTON_TOLERANCE * (1 + np.hypot(xd, yd))
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        for _ in range(NEWTON_ITERATIONS):
            fx, fy, jxx, jxy, jyx, jyy = _radtan(x, y, D, jacobian=True)
            ex, ey = fx - xd, fy - yd
            if np.all(np.hypot(ex, ey) <= tolerance):
                break
            det = jxx * jyy - jxy * jyx
            x = x - (jyy * ex - jxy * ey) / det
            y = y - (jxx * ey - jyx * ex) / det
        fx, fy = _radtan(x, y, D, jacobian=False)
        bad = ~(np.hypot(fx - xd, fy - yd) <= tolerance)
    out = np.stack([x, y], axis=-1)
    out[bad] = np.nan
    return out


def _undistort_equidistant(xy_d: np.ndarray, D: np.ndarray) -> np.ndarray:
    """Solve ``theta_d(theta) = |xy_d|`` for ``theta`` in ``[0, pi/2)`` (Newton), then ``r = tan(theta)``."""
    theta_d = np.hypot(xy_d[..., 0], xy_d[..., 1])
    theta = theta_d.copy()
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        for _ in range(NEWTON_ITERATIONS):
            t2 = theta * theta
            slope = 1 + t2 * (3 * D[0] + t2 * (5 * D[1] + t2 * (7 * D[2] + t2 * 9 * D[3])))
            theta = theta - (_theta_d(theta, D) - theta_d) / slope
        ok = (np.abs(_theta_d(theta, D) - theta_d) <= NEWTON_TOLERANCE * (1 + theta_d)) \
            & (theta >= 0) & (theta < np.pi / 2)
        scale = np.where(theta_d > 1e-12, np.tan(theta) / theta_d, 1.0)
    out = xy_d * scale[..., None]
    out[~ok] = np.nan
    return out


def array_key(a: np.ndarray | None) -> tuple[float, ...] | None:
    """A hashable copy of an array's values (float64), for caches keyed by a calibration."""
    return None if a is None else tuple(np.asarray(a, dtype=np.float64).ravel().tolist())


def _border(width: int, height: int, step: float = 2.0) -> np.ndarray:
    """Pixel coordinates along the outer edge of a ``width`` x ``height`` image (``-0.5 .. W - 0.5``)."""
    us = np.linspace(-0.5, width - 0.5, max(2, int(width / step)))
    vs = np.linspace(-0.5, height - 0.5, max(2, int(height / step)))
    return np.concatenate([np.c_[us, np.full_like(us, -0.5)], np.c_[us, np.full_like(us, height - 0.5)],
                           np.c_[np.full_like(vs, -0.5), vs], np.c_[np.full_like(vs, width - 0.5), vs]])


def pixels_to_normalized(uv: np.ndarray, K: np.ndarray) -> np.ndarray:
    """``K^-1 (u, v, 1)``: distorted normalized coordinates of raw pixels ``(..., 2)``."""
    Kc = np.asarray(K, dtype=np.float64)[:, :3]
    y = (uv[..., 1] - Kc[1, 2]) / Kc[1, 1]
    x = (uv[..., 0] - Kc[0, 2] - Kc[0, 1] * y) / Kc[0, 0]
    return np.stack([x, y], axis=-1)


def normalized_to_pixels(xy: np.ndarray, K: np.ndarray) -> np.ndarray:
    """``K (x, y, 1)`` restricted to ``(u, v)``: ``(..., 2)`` normalized -> pixels."""
    Kc = np.asarray(K, dtype=np.float64)[:, :3]
    x, y = xy[..., 0], xy[..., 1]
    return np.stack([Kc[0, 0] * x + Kc[0, 1] * y + Kc[0, 2], Kc[1, 1] * y + Kc[1, 2]], axis=-1)


def _radial(r: np.ndarray, D: np.ndarray, model: str) -> np.ndarray:
    """Distorted radius of undistorted normalized radius ``r`` (the radial part of the model)."""
    if model == "equidistant":
        return _theta_d(np.arctan(r), D)
    return distort(np.stack([r, np.zeros_like(r)], axis=-1), np.r_[D[:2], 0.0, 0.0, D[4:]], model)[..., 0]


@functools.lru_cache(maxsize=16)
def _view_radius(K: tuple, D: tuple, model: str, width: int, height: int) -> float:
    Dc = np.asarray(D)
    border = undistort(pixels_to_normalized(_border(width, height), np.asarray(K).reshape(3, 3)), Dc, model)
    radius = np.hypot(border[:, 0], border[:, 1])
    r_max = float(np.nanmax(radius)) * 1.02 if np.isfinite(radius).any() else np.inf
    # Polynomial models fold back beyond some radius (the distorted radius decreases again); points
    # past the fold would wrap into the image. Stop at the fold when it comes first.
    r = np.linspace(0.0, min(r_max, 10.0) if np.isfinite(r_max) else 10.0, 4001)
    folds = np.flatnonzero(np.diff(_radial(r, Dc, model)) <= 0)
    return float(r[folds[0]]) if folds.size else r_max


def view_radius(K: np.ndarray, D: np.ndarray | list[float] | None, model: str, width: int, height: int) -> float:
    """Largest undistorted normalized radius ``hypot(X/Z, Y/Z)`` a point may have to be projected
    through the distortion into the ``width`` x ``height`` raw image: the farthest image-border ray,
    2 % margin, or the radius where the model folds back if that comes first (inf without distortion).

    OpenCV's ``projectPoints`` has no such limit, so far off-axis points of a polynomial model can
    land inside the image; :func:`~lumde_depth.geometry.projection.project_points` drops them.
    """
    Dc = coefficients(D, model)
    if Dc is None:
        return np.inf
    return _view_radius(array_key(np.asarray(K, dtype=np.float64)[:, :3]), array_key(Dc), model, int(width),
                        int(height))


def _undistorted_grid(Kc: np.ndarray, D: np.ndarray | None, model: str, cols: np.ndarray, rows: np.ndarray
                      ) -> np.ndarray:
    """Undistorted normalized coordinates ``(len(rows), len(cols), 2)`` of the pixel grid ``cols`` x ``rows``.

    Large grids are solved exactly at knots every :data:`GRID_KNOT_STEP` pixels and interpolated
    bilinearly between them: the undistortion is smooth, so this is within 1e-6 (normalized; 0.002 px
    at f = 2000 px, a 1920x1200 raw image at PJLab's distortion) of the exact solve at a tenth of its cost.
    """
    if D is None or cols.size * rows.size <= EXACT_GRID_PIXELS:
        xy = pixels_to_normalized(np.stack(np.meshgrid(cols, rows), axis=-1), Kc)
        return xy if D is None else undistort(xy, D, model)
    knot_cols = np.unique(np.r_[np.arange(cols[0], cols[-1], GRID_KNOT_STEP), cols[-1]])
    knot_rows = np.unique(np.r_[np.arange(rows[0], rows[-1], GRID_KNOT_STEP), rows[-1]])
    knots = _undistorted_grid(Kc, D, model, knot_cols, knot_rows)

    def cell(knot: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        i = np.clip(np.searchsorted(knot, at, side="right") - 1, 0, knot.size - 2)
        return i, (at - knot[i]) / (knot[i + 1] - knot[i])

    ic, wc = cell(knot_cols, cols)
    ir, wr = cell(knot_rows, rows)
    wc, wr = wc[None, :, None], wr[:, None, None]
    top, bottom = knots[ir], knots[ir + 1]
    return (top[:, ic] * (1 - wc) + top[:, ic + 1] * wc) * (1 - wr) + (bottom[:, ic] * (1 - wc)
                                                                        + bottom[:, ic + 1] * wc) * wr


@bytes_cache(GRID_CACHE_BYTES)
def _ray_grid(K: tuple, D: tuple | None, model: str, R: tuple | None, width: int, height: int,
              decimation: int) -> np.ndarray:
    cols = np.arange(0, width, decimation, dtype=np.float64)
    rows = np.arange(0, height, decimation, dtype=np.float64)
    xy = _undistorted_grid(np.asarray(K).reshape(3, 3), None if D is None else np.asarray(D), model, cols, rows)
    rays = np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], axis=-1)
    if R is not None:
        rays = rays @ np.asarray(R).reshape(3, 3)   # row-vector form of R^T @ ray
    rays = rays.astype(np.float32)
    rays.setflags(write=False)
    return rays


def ray_grid(K: np.ndarray, width: int, height: int, D: np.ndarray | list[float] | None = None,
             distortion_model: str = "plumb_bob", R: np.ndarray | None = None, decimation: int = 1) -> np.ndarray:
    """Read-only ``(ceil(H / n), ceil(W / n), 3)`` float32 rays of the pixel centres (every ``n``-th
    pixel, ``n = decimation``): ``depth * ray`` is the pixel's point in the camera optical frame, for
    a z-depth image of a raw camera with distortion ``D`` (undistorted; NaN where that fails), of a
    pinhole camera (``D`` None or zero) or, with ``R``, of a rectified image whose frame is rotated by
    ``R`` from the optical frame (``CameraInfo.r``; the ray is ``R^T K^-1 (u, v, 1)``, scaled for a unit
    depth along the rectified axis). Cached per camera (computed once: about a second for a 1920x1200
    raw image on a 2-core machine, see :func:`_undistorted_grid`).
    """
    Dc = coefficients(D, distortion_model)
    R_key = None if R is None or np.allclose(R, np.eye(3), atol=1e-12) else array_key(R)
    return _ray_grid(array_key(np.asarray(K, dtype=np.float64)[:, :3]), array_key(Dc), distortion_model, R_key,
                     int(width), int(height), int(decimation))
