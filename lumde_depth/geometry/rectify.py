"""Rectify a raw (distorted) image onto the grid of its rectified projection matrix ``P``.

What ``image_proc``'s rectify node and OpenCV's ``initUndistortRectifyMap`` + ``remap`` do: each
pixel ``(u', v')`` of the rectified image looks along ``R^T P[:, :3]^-1 (u', v', 1)`` (``R`` the
rectification rotation, ``CameraInfo.r``), that ray is distorted and mapped through the raw ``K`` to
the raw pixel it samples (bilinearly). :class:`Rectifier` computes the map once per camera and
keeps the four source pixels and weights of every output pixel, so each frame costs one gather.
"""
from __future__ import annotations

import numpy as np

from lumde_depth.geometry.cache import bytes_cache
from lumde_depth.geometry.distortion import (GRID_CACHE_BYTES, array_key, coefficients, distort, normalized_to_pixels,
                                             pixels_to_normalized)
from lumde_depth.geometry.projection import intrinsic_matrix


def rectify_map(K: np.ndarray, D: np.ndarray | None, distortion_model: str, width: int, height: int,
                P: np.ndarray | None = None, R: np.ndarray | None = None) -> np.ndarray:
    """``(height, width, 2)`` float64 raw-image ``(u, v)`` sampled by each pixel of the rectified image
    (``P`` 3x3 or 3x4, default ``K``; ``R`` default identity)."""
    Kc = intrinsic_matrix(K)
    Pc = intrinsic_matrix(Kc if P is None else P)
    uv = np.stack(np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64)), axis=-1)
    xy = pixels_to_normalized(uv, Pc)
    if R is not None:
        rays = np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], axis=-1) @ np.asarray(R, np.float64).reshape(3, 3)
        with np.errstate(divide="ignore", invalid="ignore"):
            xy = np.where(rays[..., 2:3] > 0, rays[..., :2] / rays[..., 2:3], np.nan)
    return normalized_to_pixels(distort(xy, coefficients(D, distortion_model), distortion_model), Kc)


class Rectifier:
    """Bilinear resampling of raw images (or any ``(H, W[, C])`` array) onto the rectified grid;
    pixels whose source falls outside the raw image are 0.

    Keeps, per output pixel, the flat index of its top-left source pixel (int32) and the two
    fractional offsets (float32): 12 bytes a pixel (28 MB at 1920x1200), the rest per frame.
    """

    def __init__(self, K: np.ndarray, D: np.ndarray | None, distortion_model: str, width: int, height: int,
                 P: np.ndarray | None = None, R: np.ndarray | None = None) -> None:
        if width < 2 or height < 2:
            raise ValueError(f"cannot rectify a {width}x{height} image")
        self.width, self.height = int(width), int(height)
        uv = rectify_map(K, D, distortion_model, width, height, P, R)
        u, v = uv[..., 0], uv[..., 1]
        with np.errstate(invalid="ignore"):
            self.inside = np.isfinite(u) & np.isfinite(v) & (u >= -0.5) & (u <= width - 0.5) \
                & (v >= -0.5) & (v <= height - 0.5)
        u = np.clip(np.where(self.inside, u, 0.0), 0, width - 1)
        v = np.clip(np.where(self.inside, v, 0.0), 0, height - 1)
        u0 = np.minimum(np.floor(u), width - 2)
        v0 = np.minimum(np.floor(v), height - 2)
        self.base = (v0 * width + u0).astype(np.int32)
        self.fu, self.fv = (u - u0).astype(np.float32)[..., None], (v - v0).astype(np.float32)[..., None]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """The rectified image, same shape and dtype as ``image`` (integers rounded)."""
        image = np.asarray(image)
        if image.shape[:2] != (self.height, self.width):
            raise ValueError(f"image is {image.shape[1]}x{image.shape[0]}, the rectifier was built for "
                             f"{self.width}x{self.height}")
        flat = image.reshape(self.height * self.width, -1)
        b = self.base

        def at(offset: int) -> np.ndarray:
            return flat[b + offset].astype(np.float32)

        top = at(0) * (1 - self.fu) + at(1) * self.fu
        bottom = at(self.width) * (1 - self.fu) + at(self.width + 1) * self.fu
        out = top * (1 - self.fv) + bottom * self.fv
        out[~self.inside] = 0
        if np.issubdtype(image.dtype, np.integer):
            info = np.iinfo(image.dtype)
            out = np.clip(np.rint(out), info.min, info.max)
        return out.astype(image.dtype).reshape(image.shape)


@bytes_cache(GRID_CACHE_BYTES)
def _cached(K: tuple, D: tuple | None, model: str, width: int, height: int, P: tuple | None,
            R: tuple | None) -> Rectifier:
    def arr(t: tuple | None, shape: tuple[int, int]) -> np.ndarray | None:
        return None if t is None else np.asarray(t).reshape(shape)
    return Rectifier(arr(K, (3, 3)), None if D is None else np.asarray(D), model, width, height, arr(P, (3, 4)),
                     arr(R, (3, 3)))


def cached_rectifier(K: np.ndarray, D: np.ndarray | None, distortion_model: str, width: int, height: int,
                     P: np.ndarray | None = None, R: np.ndarray | None = None) -> Rectifier:
    """:class:`Rectifier` of a calibration, built once and kept (the most recently used ones, within
    :data:`~lumde_depth.geometry.distortion.GRID_CACHE_BYTES`): a node rectifies every frame of a camera with the
    same maps."""
    Dc = coefficients(D, distortion_model)
    P = None if P is None else np.asarray(P, dtype=np.float64).reshape(-1, 4 if np.size(P) == 12 else 3)
    if P is not None and P.shape[1] == 3:
        P = np.hstack([P, np.zeros((3, 1))])
    return _cached(array_key(intrinsic_matrix(K)), array_key(Dc), distortion_model, int(width), int(height),
                   array_key(P), array_key(R))
