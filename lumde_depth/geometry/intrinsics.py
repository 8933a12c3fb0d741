"""Crop and resize images and depth maps, keeping the camera matrix consistent.

Pixel-centre convention (as in :mod:`lumde_depth.geometry.projection`): the centre of pixel ``(r, c)``
is at ``(u, v) = (c, r)``, so the image spans ``[-0.5, W - 0.5]``. Resizing ``W -> W'`` maps a
coordinate ``u`` to ``u' = s (u + 0.5) - 0.5`` with ``s = W' / W`` (the mapping Pillow and
``align_corners=False`` interpolation use), hence ``fx' = s fx`` and ``cx' = s (cx + 0.5) - 0.5``.
Cropping at ``(top, left)`` shifts ``cx -= left``, ``cy -= top``. All functions accept a 3x3 ``K``
or a 3x4 ``P`` and return the same shape.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from lumde_depth.geometry.projection import intrinsic_matrix, pixel_indices, splat_nearest


def _camera(K: np.ndarray) -> np.ndarray:
    intrinsic_matrix(K)  # validates the shape and focal lengths
    return np.asarray(K, dtype=np.float64)


def crop_intrinsics(K: np.ndarray, top: int, left: int) -> np.ndarray:
    """Camera matrix of the crop whose top-left pixel is ``(top, left)`` of the original image."""
    shift = np.array([[1.0, 0.0, -left], [0.0, 1.0, -top], [0.0, 0.0, 1.0]])
    return shift @ _camera(K)


def scale_intrinsics(K: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Camera matrix after resizing the image by ``sx`` horizontally and ``sy`` vertically."""
    scale = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
    return scale @ _camera(K)


def _image_size(image: np.ndarray) -> tuple[int, int]:
    if image.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) array, got shape {image.shape}")
    return image.shape[0], image.shape[1]


def crop(image: np.ndarray, K: np.ndarray, top: int, left: int, height: int, width: int
         ) -> tuple[np.ndarray, np.ndarray]:
    """Crop ``image`` ((H, W) or (H, W, C), any dtype: colour, depth, masks) to the box
    ``top, left, height, width``; returns the crop (a view) and its camera matrix."""
    H, W = _image_size(image)
    if top < 0 or left < 0 or height <= 0 or width <= 0 or top + height > H or left + width > W:
        raise ValueError(f"crop box top={top}, left={left}, height={height}, width={width} does not fit "
                         f"inside the {H}x{W} image")
    return image[top:top + height, left:left + width], crop_intrinsics(K, top, left)


def bottom_center_box(height: int, width: int, crop_height: int, crop_width: int) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of the bottom-centred crop (KITTI DC's 352x1216 convention:
    the sky at the top has no LiDAR points)."""
    if crop_height > height or crop_width > width:
        raise ValueError(f"crop {crop_height}x{crop_width} is larger than the {height}x{width} image")
    return height - crop_height, (width - crop_width) // 2, crop_height, crop_width


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    height, width = (int(s) for s in size)
    if height <= 0 or width <= 0:
        raise ValueError(f"target size must be positive (height, width), got {size}")
    return height, width


def resize_image(image: np.ndarray, K: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear (antialiased when shrinking) resize of a colour / grey / float image to
    ``size = (height, width)``; returns the image (same dtype) and the new camera matrix.
    Not for depth: use :func:`resize_sparse_depth` or :func:`resize_dense_depth`."""
    H, W = _image_size(image)
    height, width = _check_size(size)
    if image.dtype == np.uint8 and (image.ndim == 2 or image.shape[2] in (3, 4)):
        out = np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))
    else:
        channels = image[..., None] if image.ndim == 2 else image
        out = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(channels[..., i], dtype=np.float32))
                                   .resize((width, height), Image.Resampling.BILINEAR))
                        for i in range(channels.shape[2])], axis=-1).astype(image.dtype)
        out = out[..., 0] if image.ndim == 2 else out
    return out, scale_intrinsics(K, width / W, height / H)


def resize_sparse_depth(depth: np.ndarray, K: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Resize a sparse depth map (0 = no point) without interpolating: each valid pixel moves to the
    target pixel containing its centre; where several meet, the nearest depth wins (as a fresh
    projection at the new resolution would). Returns float32 depth and the new camera matrix."""
    H, W = _image_size(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must be (H, W), got shape {depth.shape}")
    height, width = _check_size(size)
    rows, cols = pixel_indices(depth > 0)
    new_rows = np.minimum(((rows + 0.5) * (height / H)).astype(np.int64), height - 1)
    new_cols = np.minimum(((cols + 0.5) * (width / W)).astype(np.int64), width - 1)
    out = splat_nearest(new_rows, new_cols, depth[rows, cols], height, width)
    return out, scale_intrinsics(K, width / W, height / H)


def resize_dense_depth(depth: np.ndarray, K: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Resize a dense or semi-dense depth map (ground truth) by nearest-neighbour sampling, so no
    depth is ever mixed across an object edge. Returns the depth (same dtype) and the new camera matrix."""
    H, W = _image_size(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must be (H, W), got shape {depth.shape}")
    height, width = _check_size(size)
    src_rows = np.minimum(((np.arange(height) + 0.5) * (H / height)).astype(np.int64), H - 1)
    src_cols = np.minimum(((np.arange(width) + 0.5) * (W / width)).astype(np.int64), W - 1)
    return depth[np.ix_(src_rows, src_cols)], scale_intrinsics(K, width / W, height / H)
