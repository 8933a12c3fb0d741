"""Where a dense depth map is supported by the LiDAR (numpy + scipy, no torch, no ROS).

A completion network gives every pixel a depth, also where nothing measured anything: above the
LiDAR's top ring (25-35 % of a KITTI image), beyond its horizontal field of view, inside large
holes of the scan. REP 118 says such pixels are NaN. :func:`support_mask` finds the supported ones
from the projected LiDAR itself (the z-buffered sparse depth of :func:`~.projection.project_points`):

- **field of view**: per image column, the rows between the topmost and the bottommost projected
  point, taken over a window of neighbouring columns (so a column whose top-ring return is missing
  does not cut a notch; columns with no point in the window are outside the field of view);
- **near a point**: the distance from each pixel to its nearest LiDAR pixel must not exceed a
  threshold that grows with the LiDAR's density in this image and shrinks with depth:
  ``max(density_factor * spacing, max_gap * fx / depth)`` pixels, where ``spacing`` is the median
  vertical gap between neighbouring points of a column (the ring spacing, ~10 px on KITTI) and
  ``max_gap`` is a lateral distance in metres at the pixel's depth;
- **not saturated**: depth not at the model's output clip (a value at its clip is the network
  saturating, not a measurement; depth beyond it comes from far LiDAR points and stays).

Every step is vectorized (:class:`LidarCoverage` holds the per-column extents, the spacing and the
distance transform, which runs on a grid coarsened by about a third of the ring spacing: its error, at
most one coarse cell, is far below the threshold).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from lumde_depth.geometry.projection import pixel_indices

DENSITY_FACTOR = 2.0   # pixels within this many ring spacings of a LiDAR pixel are supported at any depth


class LidarCoverage:
    """What the projected LiDAR ``sparse`` (``(H, W)`` metres, 0 = no point) covers in its image.

    ``top`` / ``bottom``: per column, the first and last row holding a point (``H`` / ``-1`` where none);
    ``spacing``: ``(vertical, horizontal)`` median gap in pixels between neighbouring LiDAR pixels (the
    ring spacing, as the extent of a column's points over their count, and the azimuth step between
    neighbours of a row); inf where there are too few points.
    """

    def __init__(self, sparse: np.ndarray) -> None:
        self.hit = np.asarray(sparse) > 0
        height, width = self.hit.shape
        self.rows, self.cols = pixel_indices(self.hit)   # sorted by row, then column
        count = np.bincount(self.cols, minlength=width)
        # per column the first / last row: with repeated indices the last assignment wins
        self.top = np.full(width, height, np.int64)
        self.top[self.cols[::-1]] = self.rows[::-1]
        self.bottom = np.full(width, -1, np.int64)
        self.bottom[self.cols] = self.rows
        several = count > 1
        vertical = (self.bottom[several] - self.top[several]) / (count[several] - 1)
        horizontal = np.diff(self.cols)[np.diff(self.rows) == 0]
        self.spacing = (float(np.median(vertical)) if vertical.size else np.inf,
                        float(np.median(horizontal)) if horizontal.size else np.inf)

    def field_of_view(self, column_window: int | None = None) -> np.ndarray:
        """``(H, W)`` bool: per column, the rows between the topmost and the bottommost point of the columns
        within ``column_window`` pixels either side (default: twice the azimuth step)."""
        height, width = self.hit.shape
        if column_window is None:
            step = self.spacing[1]
            column_window = int(np.clip(2 * step, 1, width)) if np.isfinite(step) else 1
        top = _window_extreme(self.top, column_window, np.minimum, height)
        bottom = _window_extreme(self.bottom, column_window, np.maximum, -1)
        rows = np.arange(height)[:, None]
        return (rows >= top[None, :]) & (rows <= bottom[None, :])

    def distance(self, cell: int = 1) -> np.ndarray:
        """``(ceil(H / cell), ceil(W / cell))`` float32 pixels from each ``cell`` x ``cell`` block to the nearest
        block holding a LiDAR pixel (the exact pixel distance for ``cell`` 1, within one block otherwise);
        inf where there is no point."""
        height, width = self.hit.shape
        shape = (-(-height // cell), -(-width // cell))
        if self.rows.size == 0:
            return np.full(shape, np.inf, np.float32)
        empty = np.ones(shape, bool)
        empty[self.rows // cell, self.cols // cell] = False
        return ndimage.distance_transform_edt(empty).astype(np.float32) * np.float32(cell)


def _window_extreme(values: np.ndarray, half: int, reduce: np.ufunc, fill: float) -> np.ndarray:
    padded = np.pad(values, half, constant_values=fill)
    return reduce.reduce(sliding_window_view(padded, 2 * half + 1), axis=1)


def unsaturated(depth: np.ndarray, depth_range: tuple[float, float]) -> np.ndarray:
    """``(H, W)`` bool: ``depth`` not at either end of the model's output clip ``(low, high)`` (a value at the
    clip is the network saturating, not a measurement; a ``low`` of 0 clips nothing). Depth beyond ``high``
    is kept: the LiDAR alignment carries far LiDAR points past the network's range."""
    low, high = depth_range
    tolerance = np.float32(1e-6)
    inside = np.abs(depth - np.float32(high)) > np.float32(high) * tolerance if np.isfinite(high) \
        else np.ones(depth.shape, bool)
    if low > 0:
        inside &= np.abs(depth - np.float32(low)) > np.float32(low) * tolerance
    return inside


def support_mask(depth: np.ndarray, sparse: np.ndarray, fx: float, max_gap: float = 1.0,
                 density_factor: float = DENSITY_FACTOR, depth_range: tuple[float, float] | None = None) -> np.ndarray:
    """``(H, W)`` bool, True where the dense ``depth`` (metres, 0 = none) is supported by the projected LiDAR
    ``sparse`` (metres, 0 = no point) of the same image, whose focal length in pixels is ``fx``.

    See the module docstring for the rules. ``max_gap`` metres (0 = no distance test); ``depth_range``
    ``(low, high)``: the model's output clip, values at either end are saturated (unsupported). (The
    model's own per-pixel confidence, ``min_confidence``, is applied next to this by the pipeline.)
    """
    depth, sparse = np.asarray(depth), np.asarray(sparse)
    if depth.shape != sparse.shape or depth.ndim != 2:
        raise ValueError(f"depth {depth.shape} and sparse {sparse.shape} must be the same (H, W)")
    if not fx > 0:
        raise ValueError(f"fx must be a positive focal length in pixels, got {fx}")
    coverage = LidarCoverage(sparse)
    support = coverage.field_of_view()
    support &= depth > 0   # False for NaN too
    if max_gap > 0:
        # on blocks of about a third of the ring spacing (the block's top-left depth stands for it): within
        # density_factor ring spacings, or within max_gap metres at that depth (no division)
        spacing = coverage.spacing[0] if np.isfinite(coverage.spacing[0]) else 1.0
        cell = max(1, int(spacing // 3))
        dist = coverage.distance(cell)
        near = dist <= np.float32(density_factor * spacing)
        with np.errstate(invalid="ignore", over="ignore"):   # inf distance x depth: far, as meant
            near |= dist * depth[::cell, ::cell] <= np.float32(max_gap * fx)
        height, width = depth.shape
        support &= near[np.arange(height) // cell][:, np.arange(width) // cell]
    if depth_range is not None:
        support &= unsaturated(depth, depth_range)
    return support
