"""LiDAR -> image projection into a z-buffered sparse depth map.

Pixel convention (used throughout :mod:`lumde_depth.geometry`): the centre of pixel ``(row, col)``
lies at the continuous image coordinate ``(u, v) = (col, row)``, as in OpenCV, ROS ``CameraInfo`` and
the KITTI calibration; a projected point falls into pixel ``(floor(v + 0.5), floor(u + 0.5))``. (Monodepth2's
and PackNet's ``generate_depth_map`` subtract one more, a leftover of MATLAB's 1-based indexing; we do not.)

Camera matrix convention: ``K`` may be a 3x3 intrinsic matrix or a 3x4 rectified projection matrix
``P`` (KITTI ``P_rect_0X`` / ``P2``, ROS ``CameraInfo.p``). Only its left 3x3 block is applied: the
fourth column of ``P`` is the position of the reference camera seen from this camera (the stereo
baseline), and ``T_cam_lidar`` already ends in *this* camera's own optical frame, baseline included
(see :mod:`lumde_depth.geometry.calibration`). With ``T_cam_lidar = [I | K^-1 P[:, 3]] @ T_ref_lidar``
the result equals the KITTI devkit's ``P @ T_ref_lidar @ x`` exactly, and the same matrix is what a
TF tree (one optical frame per camera) gives.

Raw (distorted) images: with ``D`` (and ``distortion_model``, see :mod:`.distortion`) the points are
projected through the lens distortion, ``K @ distort(X / Z, Y / Z)``, onto the image as the camera
published it; ``K`` is then the raw camera's matrix (``CameraInfo.k``), not the rectified ``P``.
Points farther off-axis than any ray of the image (:func:`.distortion.view_radius`) are dropped
before distorting, so a polynomial model's fold-back cannot wrap them into the picture.
"""
from __future__ import annotations

import numpy as np

from lumde_depth.geometry.distortion import coefficients, distort, normalized_to_pixels, view_radius


def intrinsic_matrix(K: np.ndarray) -> np.ndarray:
    """The 3x3 intrinsic block of a 3x3 ``K`` or 3x4 ``P`` (float64); a clear error for anything else."""
    K = np.asarray(K, dtype=np.float64)
    if K.shape not in ((3, 3), (3, 4)):
        raise ValueError(f"camera matrix must be 3x3 (K) or 3x4 (P), got shape {K.shape}")
    if not (np.isfinite(K[0, 0]) and np.isfinite(K[1, 1])) or K[0, 0] == 0 or K[1, 1] == 0:
        raise ValueError(f"camera matrix has a zero or non-finite focal length: fx={K[0, 0]}, fy={K[1, 1]}")
    if not (np.isfinite(K[0, 2]) and np.isfinite(K[1, 2])):
        raise ValueError(f"camera matrix has a non-finite principal point: cx={K[0, 2]}, cy={K[1, 2]}")
    if not np.all(np.isfinite(K)):
        raise ValueError(f"camera matrix has non-finite entries: {K.tolist()}")
    return K[:, :3]


def _check_transform(T: np.ndarray) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f"T_cam_lidar must be a 4x4 homogeneous matrix, got shape {T.shape}")
    if not np.all(np.isfinite(T)):
        raise ValueError("T_cam_lidar contains NaN or inf")
    return T


def pixel_indices(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)`` int64 of the True pixels of a 2-D ``mask``, row by row: ``np.nonzero(mask)``, about 4x
    faster on a camera-sized mask (one flat scan and a division instead of numpy's per-axis bookkeeping)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    return np.divmod(np.flatnonzero(mask), mask.shape[1])


def splat_nearest(rows: np.ndarray, cols: np.ndarray, depth: np.ndarray, height: int, width: int) -> np.ndarray:
    """Write positive ``depth`` at integer pixels ``(rows, cols)`` of a zero ``(height, width)`` float32
    map; where several land on one pixel the smallest depth wins (z-buffer).

    Indices must already be inside the image. One ``np.sort`` of int64 keys ``pixel << 32 | bits(depth)``
    does the z-buffer: positive float32 values order like their bit patterns, so after sorting the
    first key of each pixel holds its nearest depth (about 2x faster than ``np.minimum.at``).
    """
    out = np.zeros((height, width), dtype=np.float32)
    depth = np.asarray(depth, dtype=np.float32)
    if depth.size == 0:
        return out
    if not depth.min() > 0:
        raise ValueError("splat_nearest needs positive, finite depths (drop zeros / NaN first)")
    key = (rows.astype(np.int64) * width + cols.astype(np.int64)) << 32
    key |= depth.view(np.uint32).astype(np.int64)
    key.sort()
    pixel = key >> 32
    first = np.empty(key.size, dtype=bool)
    first[0] = True
    np.not_equal(pixel[1:], pixel[:-1], out=first[1:])
    key = key[first]
    out.reshape(-1)[key >> 32] = (key & 0xFFFFFFFF).astype(np.uint32).view(np.float32)
    return out


def project_to_pixels(points: np.ndarray, T_cam_lidar: np.ndarray, K: np.ndarray, width: int, height: int,
                      min_depth: float = 0.1, max_depth: float = np.inf, *, D: np.ndarray | None = None,
                      distortion_model: str = "plumb_bob"
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Project LiDAR points and keep those that land in the image.

    Returns ``(rows, cols, depth, index)``: integer pixel of each kept point, its camera-frame
    depth ``z`` (float32 metres) and its index into ``points`` (to look up intensity, rings, ...).
    Points with NaN/inf coordinates, behind the camera, outside ``[min_depth, max_depth]`` or outside
    the image are dropped. ``D`` / ``distortion_model``: project onto the raw image of a camera with
    lens distortion (see the module docstring); None or all zeros = pinhole.
    """
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] < 3:
        raise ValueError(f"points must be an (N, >=3) array of x, y, z[, ...], got shape {points.shape}")
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got width={width}, height={height}")
    if not min_depth > 0 or not max_depth > min_depth:
        raise ValueError(f"need 0 < min_depth < max_depth, got min_depth={min_depth}, max_depth={max_depth}")
    T = _check_transform(T_cam_lidar)
    Kc = intrinsic_matrix(K)
    Dc = coefficients(D, distortion_model)
    if Dc is not None:
        return _project_distorted(points, T, Kc, Dc, distortion_model, width, height, min_depth, max_depth)
    A = Kc @ T[:3, :3]  # homogeneous pixel coordinates (u*z, v*z, z) = A @ x + b
    b = Kc @ T[:3, 3]
    # Prefilter in the points' own precision with margins (1 px, 1 mm: far above float32 rounding),
    # testing u, v against the image as u*z, v*z against bounds*z (no division), then redo the ~20 %
    # of survivors exactly in float64. Three matrix-vector products and in-place masks: on this VM
    # allocating, gathering and freeing large arrays costs more than the arithmetic.
    ftype = points.dtype if points.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # inf / NaN coordinates: dropped by the masks
        Af, bf = A.astype(ftype), b.astype(ftype)
        xyz = points[:, :3].astype(ftype, copy=False)
        z = xyz @ Af[2] + bf[2]
        uz = xyz @ Af[0] + bf[0]
        vz = xyz @ Af[1] + bf[1]
        keep = (z >= min_depth - min(1e-3, min_depth / 2)) & (z <= max_depth + 1e-3)  # False for NaN
        keep &= uz >= -1.5 * z
        keep &= uz < (width + 0.5) * z
        keep &= vz >= -1.5 * z
        keep &= vz < (height + 0.5) * z
    index = np.flatnonzero(keep)
    uvz = np.take(points, index, axis=0)[:, :3].astype(np.float64) @ A.T + b
    z = uvz[:, 2]
    cols = np.floor(uvz[:, 0] / z + 0.5)
    rows = np.floor(uvz[:, 1] / z + 0.5)
    inside = ((z >= min_depth) & (z <= max_depth)
              & (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height))
    return (rows[inside].astype(np.int64), cols[inside].astype(np.int64), z[inside].astype(np.float32),
            index[inside])


def _project_distorted(points: np.ndarray, T: np.ndarray, Kc: np.ndarray, D: np.ndarray, model: str,
                       width: int, height: int, min_depth: float, max_depth: float
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`project_to_pixels` through lens distortion (float64 throughout)."""
    with np.errstate(invalid="ignore", over="ignore"):
        # a contiguous R^T: numpy's matmul with a transposed view of it is ~20x slower here
        cam = points[:, :3].astype(np.float64) @ np.ascontiguousarray(T[:3, :3].T) + T[:3, 3]
        index = np.flatnonzero((cam[:, 2] >= min_depth) & (cam[:, 2] <= max_depth))  # False for NaN
    cam = cam[index]
    xy = cam[:, :2] / cam[:, 2:3]
    in_view = np.hypot(xy[:, 0], xy[:, 1]) <= view_radius(Kc, D, model, width, height)
    index, xy, z = index[in_view], xy[in_view], cam[in_view, 2]
    uv = normalized_to_pixels(distort(xy, D, model), Kc)
    cols = np.floor(uv[:, 0] + 0.5)
    rows = np.floor(uv[:, 1] + 0.5)
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    return (rows[inside].astype(np.int64), cols[inside].astype(np.int64), z[inside].astype(np.float32),
            index[inside])


def project_points(points: np.ndarray, T_cam_lidar: np.ndarray, K: np.ndarray, width: int, height: int,
                   min_depth: float = 0.1, max_depth: float = np.inf, *, D: np.ndarray | None = None,
                   distortion_model: str = "plumb_bob") -> np.ndarray:
    """Sparse depth image of a LiDAR cloud: ``(height, width)`` float32 metres, 0 where no point.

    ``points`` is ``(N, >=3)`` (x, y, z first) in the LiDAR frame, ``T_cam_lidar`` the 4x4 transform
    LiDAR -> camera optical frame, ``K`` a 3x3 intrinsic or 3x4 projection matrix (see the module
    docstring for how ``P`` is applied). Where several points fall in one pixel the nearest wins.
    ``D`` / ``distortion_model``: a raw image with lens distortion (``K`` then is the raw camera's
    ``CameraInfo.k``); None or all zeros = pinhole.
    """
    rows, cols, z, _ = project_to_pixels(points, T_cam_lidar, K, width, height, min_depth, max_depth,
                                         D=D, distortion_model=distortion_model)
    return splat_nearest(rows, cols, z, height, width)
