"""Depth image -> 3D points in the camera optical frame (x right, y down, z forward; REP 103 optical).

Uses the pixel-centre convention of :mod:`lumde_depth.geometry.projection`, so
``backproject`` inverts ``project_points`` exactly at pixel centres, also through lens distortion
(``D``, ``distortion_model``: a raw image's depth goes back along the undistorted ray of each pixel,
:func:`lumde_depth.geometry.distortion.ray_grid`).
"""
from __future__ import annotations

import numpy as np

from lumde_depth.geometry.distortion import coefficients, ray_grid
from lumde_depth.geometry.projection import intrinsic_matrix

#: Point layout of :func:`organized_cloud`, as depth_image_proc's ``point_cloud_xyzrgb`` fields.
XYZRGB = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<f4")])


def _valid_depth(depth: np.ndarray) -> np.ndarray:
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must be an (H, W) array in metres, got shape {depth.shape}")
    return depth.astype(np.float32, copy=False)


def _pinhole(K: np.ndarray) -> np.ndarray:
    Kc = intrinsic_matrix(K)
    if Kc[0, 1] != 0 or Kc[1, 0] != 0 or Kc[2, 0] != 0 or Kc[2, 1] != 0 or Kc[2, 2] != 1:
        raise ValueError("backproject needs a pinhole K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (no skew)")
    return Kc


def _backproject_grid(depth: np.ndarray, K: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """x, y, z of ``depth`` (already sampled at the pixel grid ``rows`` x ``cols``), NaN where invalid."""
    Kc = _pinhole(K)
    fx, fy, cx, cy = Kc[0, 0], Kc[1, 1], Kc[0, 2], Kc[1, 2]
    z = np.where(np.isfinite(depth) & (depth > 0), depth, np.float32(np.nan))
    out = np.empty(depth.shape + (3,), dtype=np.float32)
    out[..., 0] = z * ((cols - cx) / fx).astype(np.float32)[None, :]
    out[..., 1] = z * ((rows - cy) / fy).astype(np.float32)[:, None]
    out[..., 2] = z
    return out


def _curved(D: np.ndarray | None, distortion_model: str, R: np.ndarray | None) -> bool:
    """Whether the pixel rays need the full grid (distortion or a rectification rotation)."""
    return coefficients(D, distortion_model) is not None or (
        R is not None and not np.allclose(R, np.eye(3), atol=1e-12))


def backproject(depth: np.ndarray, K: np.ndarray, *, D: np.ndarray | None = None,
                distortion_model: str = "plumb_bob") -> np.ndarray:
    """``(H, W, 3)`` float32 x, y, z of every pixel of ``depth`` (metres) in the camera optical frame;
    NaN where the depth is 0, negative or not finite. ``K`` is 3x3 or a 3x4 ``P`` (3x3 block used).
    ``D`` / ``distortion_model``: ``depth`` is a raw image with lens distortion (``K`` = ``CameraInfo.k``)."""
    depth = _valid_depth(depth)
    H, W = depth.shape
    if _curved(D, distortion_model, None):
        intrinsic_matrix(K)
        z = np.where(np.isfinite(depth) & (depth > 0), depth, np.float32(np.nan))
        return ray_grid(K, W, H, D, distortion_model) * z[..., None]
    return _backproject_grid(depth, K, np.arange(H, dtype=np.float64), np.arange(W, dtype=np.float64))


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """``(..., 3)`` uint8 colours -> ``(...)`` float32 holding the bits of uint32 ``0x00RRGGBB``
    (the PCL / depth_image_proc ``rgb`` field)."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.shape[-1] != 3:
        raise ValueError(f"rgb must be (..., 3) uint8, got {rgb.dtype} with shape {rgb.shape}")
    c = rgb.astype(np.uint32)
    return ((c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]).view(np.float32)


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_rgb`: float32 packed colours -> ``(..., 3)`` uint8."""
    bits = np.asarray(packed, dtype=np.float32).view(np.uint32)
    return np.stack([(bits >> 16) & 0xFF, (bits >> 8) & 0xFF, bits & 0xFF], axis=-1).astype(np.uint8)


def organized_cloud(depth: np.ndarray, K: np.ndarray, rgb: np.ndarray | None = None, decimation: int = 1, *,
                    D: np.ndarray | None = None, distortion_model: str = "plumb_bob",
                    R: np.ndarray | None = None) -> np.ndarray:
    """Organized point cloud like depth_image_proc's ``point_cloud_xyzrgb``: a ``(H', W')`` structured
    array of :data:`XYZRGB` (x, y, z NaN where depth is invalid, so ``is_dense`` is false).

    ``decimation`` keeps every n-th pixel in both directions (``H' = ceil(H / n)``), computed on that
    grid only. Without ``rgb`` the colour is packed white. The fields are written in place (no
    intermediate x, y, z or packed-colour arrays): this runs once per published frame.
    ``D`` / ``distortion_model``: a raw image with lens distortion (points along the undistorted rays);
    ``R``: a rectified image whose frame is ``R`` rotated from the optical frame (``CameraInfo.r``;
    the points are given in the optical frame). The rays are cached per camera.
    """
    depth = _valid_depth(depth)
    if not isinstance(decimation, (int, np.integer)) or decimation < 1:
        raise ValueError(f"decimation must be an integer >= 1, got {decimation!r}")
    H, W = depth.shape
    d = depth[::decimation, ::decimation]
    cloud = np.empty(d.shape, dtype=XYZRGB)
    z = cloud["z"]
    np.copyto(z, d)
    z[~(np.isfinite(d) & (d > 0))] = np.nan
    if _curved(D, distortion_model, R):
        intrinsic_matrix(K)
        rays = ray_grid(K, W, H, D, distortion_model, R, decimation)
        np.multiply(z, rays[..., 0], out=cloud["x"])
        np.multiply(z, rays[..., 1], out=cloud["y"])
        np.multiply(z, rays[..., 2], out=z)
    else:
        Kc = _pinhole(K)
        fx, fy, cx, cy = Kc[0, 0], Kc[1, 1], Kc[0, 2], Kc[1, 2]
        rows, cols = np.arange(0, H, decimation), np.arange(0, W, decimation)
        np.multiply(z, ((cols - cx) / fx).astype(np.float32)[None, :], out=cloud["x"])
        np.multiply(z, ((rows - cy) / fy).astype(np.float32)[:, None], out=cloud["y"])
    colour = cloud.view(np.uint8).reshape(d.shape + (XYZRGB.itemsize,))[..., 12:16]  # little-endian 0x00RRGGBB
    if rgb is None:
        colour[...] = (255, 255, 255, 0)
    else:
        rgb = np.asarray(rgb)
        if rgb.shape[:2] != (H, W) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"rgb must be (H, W, 3) uint8, the same size as the depth {(H, W)}; got {rgb.dtype} "
                             f"{rgb.shape}")
        colour[..., :3] = rgb[::decimation, ::decimation, ::-1]
        colour[..., 3] = 0
    return cloud
