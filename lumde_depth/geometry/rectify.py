"""Rectify a raw (distorted) image onto the grid of its rectified projection matrix ``P``.

What ``image_proc``'s rectify node and OpenCV's ``initUndistortRectifyMap`` + ``remap`` do: each
pixel ``(u', v')`` of the rectified image looks along ``R^T P[:, :3]^-1 (u', v', 1)`` (``R`` the
rectification rotation, ``CameraInfo.r``), that ray is distorted and mapped through the raw ``K`` to
the raw pixel it samples (bilinearly). :class:`Rectifier` computes the map once per camera and
keeps the four source pixels and weights of every output pixel, so each frame costs one gather.
"""
from __future__ import annotations

import numpy as np

from lumde_depth.geometry.distortion import coefficients, distort, normalized_to_pixels, pixels_to_normalized
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
    pixels whose source falls outside the raw image are 0."""

    def __init__(self, K: np.ndarray, D: np.ndarray | None, distortion_model: str, width: int, height: int,
                 P: np.ndarray | None = None, R: np.ndarray | None = None) -> None:
        self.width, self.height = int(width), int(height)
        uv = rectify_map(K, D, distortion_model, width, height, P, R)
        u, v = uv[..., 0], uv[..., 1]
        inside = np.isfinite(u) & np.isfinite(v) & (u >= -0.5) & (u <= width - 0.5) & (v >= -0.5) & (v <= height - 0.5)
        u = np.clip(np.where(inside, u, 0.0), 0, width - 1)
        v = np.clip(np.where(inside, v, 0.0), 0, height - 1)
        u0 = np.minimum(np.floor(u), width - 2).astype(np.int64)
        v0 = np.minimum(np.floor(v), height - 2).astype(np.int64)
        fu, fv = u - u0, v - v0
        base = v0 * width + u0
        #: flat source indices (H, W, 4) and bilinear weights (H, W, 4), 0 outside the raw image
        self.index = np.stack([base, base + 1, base + width, base + width + 1], axis=-1)
        self.weight = (np.stack([(1 - fu) * (1 - fv), fu * (1 - fv), (1 - fu) * fv, fu * fv], axis=-1)
                       * inside[..., None]).astype(np.float32)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """The rectified image, same shape and dtype as ``image`` (uint8 rounded)."""
        image = np.asarray(image)
        if image.shape[:2] != (self.height, self.width):
            raise ValueError(f"image is {image.shape[1]}x{image.shape[0]}, the rectifier was built for "
                             f"{self.width}x{self.height}")
        flat = image.reshape(self.height * self.width, -1)
        out = np.einsum("hwk,hwkc->hwc", self.weight, flat[self.index].astype(np.float32))
        if image.dtype == np.uint8:
            out = np.clip(out + 0.5, 0, 255)
        return out.astype(image.dtype).reshape(image.shape)
