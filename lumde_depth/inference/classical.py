"""Classical (non-learned) depth completion: IP-Basic's morphological "fast" pipeline, and the
nearest fill.

Ku, Harakeh and Waslander, "In Defense of Classical Image Processing: Fast Depth Completion on the
CPU" (CRV 2018). The sparse depth is inverted (``max_depth - d``) so that grey dilation keeps the
*nearest* surface; then a diamond dilation, a 5x5 closing, a 7x7 fill of the remaining holes, an
optional extension of each column's top measurement to the image top, a 31x31 large fill, a 5x5
median and a Gaussian blur of valid pixels, and the inversion back. Everything is a whole-image
``scipy.ndimage`` filter (rectangular footprints run as separable 1-D filters).

The nearest fill (:func:`nearest_fill`) gives each pixel the depth of the nearest LiDAR pixel
(Euclidean, in pixels): the plainest completion, and a hard baseline on very sparse LiDARs.

The RGB image is not used: these are the baselines that need no model file (``backend="classical"``
for IP-Basic, ``backend="nearest"``; :data:`CLASSICAL_FILLS`). Neither clips far points: the depth
range follows the input's farthest point.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage

DIAMOND_5 = np.array([[0, 0, 1, 0, 0],
                      [0, 1, 1, 1, 0],
                      [1, 1, 1, 1, 1],
                      [0, 1, 1, 1, 0],
                      [0, 0, 1, 0, 0]], dtype=bool)

# cv2.GaussianBlur((5, 5), sigma=0) uses sigma = 0.3 * ((ksize - 1) / 2 - 1) + 0.8 = 1.1, radius 2.
_GAUSS_SIGMA = 1.1
_GAUSS_TRUNCATE = 2.0 / _GAUSS_SIGMA


def ip_basic(sparse: np.ndarray, max_depth: float | None = None, extrapolate: bool = True,
             min_valid: float = 0.1) -> np.ndarray:
    """Dense depth (H, W) float32 metres from sparse depth (0 = no point); 0 where still empty
    (with ``extrapolate``, only when the input has no point at all).

    ``max_depth`` is the inversion's ceiling: points at or beyond it are dropped. None (the
    default) puts it above the input's farthest point (at least 100 m), so no point is lost. ``extrapolate`` copies each column's topmost value up to row 0 and
    runs the large fill, then gives what is still empty (columns no point reached) the nearest value,
    so the whole image gets a value (the sky is not measured by the LiDAR).
    """
    sparse = np.asarray(sparse)
    if sparse.ndim != 2:
        raise ValueError(f"ip_basic: sparse depth must be (H, W), got shape {sparse.shape}")
    if max_depth is None:
        max_depth = max(100.0, 1.01 * float(sparse.max(initial=0.0)) + 1.0)
    depth = np.where((sparse > min_valid) & (sparse < max_depth), max_depth - sparse, 0.0).astype(np.float32)

    depth = ndimage.grey_dilation(depth, footprint=DIAMOND_5, mode="constant", cval=0.0)
    depth = ndimage.grey_closing(depth, size=(5, 5), mode="constant", cval=0.0)
    _fill_empty(depth, ndimage.maximum_filter(depth, size=(7, 7), mode="constant", cval=0.0), min_valid)

    if extrapolate:
        valid = depth > min_valid
        has_any = valid.any(axis=0)
        top_row = np.argmax(valid, axis=0)
        top_value = depth[top_row, np.arange(depth.shape[1])]
        above = (np.arange(depth.shape[0])[:, None] < top_row[None, :]) & has_any[None, :]
        depth = np.where(above, top_value[None, :], depth)
        _fill_empty(depth, ndimage.maximum_filter(depth, size=(31, 31), mode="constant", cval=0.0), min_valid)
        empty = depth < min_valid
        if empty.any() and not empty.all():
            # what no point reached (image borders, sparse indoor samples) takes the nearest value, as
            # the KITTI devkit interpolates a prediction's holes before evaluating it
            nearest = ndimage.distance_transform_edt(empty, return_distances=False, return_indices=True)
            depth = depth[tuple(nearest)]

    depth = ndimage.median_filter(depth, size=(5, 5), mode="nearest")
    valid = depth > min_valid
    blurred = ndimage.gaussian_filter(depth, sigma=_GAUSS_SIGMA, truncate=_GAUSS_TRUNCATE, mode="nearest")
    depth = np.where(valid, blurred, depth)

    valid = depth > min_valid
    return np.where(valid, max_depth - depth, 0.0).astype(np.float32)


def _fill_empty(depth: np.ndarray, dilated: np.ndarray, min_valid: float) -> None:
    empty = depth < min_valid
    depth[empty] = dilated[empty]


def nearest_fill(sparse: np.ndarray) -> np.ndarray:
    """Dense depth (H, W) float32: every pixel takes the depth of its nearest LiDAR pixel (0 = no
    point; all zeros when there is none). One Euclidean distance transform, vectorized."""
    sparse = np.asarray(sparse)
    if sparse.ndim != 2:
        raise ValueError(f"nearest_fill: sparse depth must be (H, W), got shape {sparse.shape}")
    valid = sparse > 0
    if not valid.any():
        return np.zeros(sparse.shape, np.float32)
    nearest = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
    return sparse[tuple(nearest)].astype(np.float32)


CLASSICAL_FILLS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"classical": ip_basic, "nearest": nearest_fill}
"""The model-free backends of ``DepthCompleter`` by name: ``classical`` (IP-Basic) and ``nearest``."""
