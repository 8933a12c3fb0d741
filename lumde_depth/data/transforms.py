"""Training / evaluation transforms on dataset samples, keeping the intrinsics ``K`` consistent.

A sample is the dict every dataset in :mod:`lumde_depth.data` returns (``rgb`` 3xHxW in [0, 1],
``sparse`` / ``gt`` 1xHxW metres, ``K`` 3x3, ``name``; sequences add ``rgb_prev`` / ``rgb_next``).
Each transform is a callable ``(sample, rng) -> sample`` whose randomness comes only from the
``numpy.random.Generator`` it is given, so a seeded generator reproduces the result exactly.

Geometric transforms act on every image-like entry of the sample alike (colour frames and depth
maps), so the triplet frames and the depth stay aligned; colour jitter touches colour frames only
(with the same factors for the whole triplet, as Monodepth2 does). Pixel centres are at integer
coordinates (the convention of :mod:`lumde_depth.geometry`, whose crop / resize intrinsics are used
here): cropping at ``(top, left)`` moves the principal point by ``(-left, -top)``; a horizontal flip
maps ``cx`` to ``W - 1 - cx``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from lumde_depth.data.depth_io import DataError
from lumde_depth.geometry import (bottom_center_box, crop_intrinsics, resize_dense_depth, resize_image,
                                  resize_sparse_depth, scale_intrinsics)

Sample = dict[str, Any]
Transform = Callable[[Sample, np.random.Generator], Sample]

COLOR_KEYS = ("rgb", "rgb_prev", "rgb_next")
DEPTH_KEYS = ("sparse", "gt")
IMAGE_KEYS = COLOR_KEYS + DEPTH_KEYS
CROP_MODES = ("random", "center", "bottom")


def image_size(sample: Sample) -> tuple[int, int]:
    """``(height, width)`` of the sample's images (they all share it)."""
    h, w = sample["rgb"].shape[-2:]
    return int(h), int(w)


def _matrix(K: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(K, dtype=np.float32))


def flip_intrinsics(K: torch.Tensor, width: int) -> torch.Tensor:
    """Intrinsics of the horizontally mirrored image of ``width`` pixels (cx -> W - 1 - cx).

    Mirroring also negates the x axis of the camera frame; fx stays positive because the image is
    mirrored along with the scene, which is what a network trained on flipped images sees.
    """
    out = K.clone()
    out[0, 2] = (width - 1) - out[0, 2]
    return out


def crop(sample: Sample, top: int, left: int, height: int, width: int) -> Sample:
    """Crop every image of the sample to ``height x width`` at ``(top, left)`` and shift ``K``."""
    h, w = image_size(sample)
    if height > h or width > w or top < 0 or left < 0 or top + height > h or left + width > w:
        raise DataError(f"{sample.get('name', 'sample')}: crop {width}x{height} at (left={left}, top={top}) "
                        f"does not fit the {w}x{h} image; use a smaller crop size")
    out = dict(sample)
    for key in IMAGE_KEYS:
        if key in out:
            out[key] = out[key][..., top:top + height, left:left + width]
    out["K"] = _matrix(crop_intrinsics(sample["K"].numpy(), top, left))
    return out


def hflip(sample: Sample) -> Sample:
    """Mirror every image of the sample left-right and update ``K``."""
    out = dict(sample)
    for key in IMAGE_KEYS:
        if key in out:
            out[key] = torch.flip(out[key], dims=(-1,))
    out["K"] = flip_intrinsics(sample["K"], image_size(sample)[1])
    return out


def resize(sample: Sample, height: int, width: int, dense_gt: bool = True) -> Sample:
    """Resize every image of the sample to ``height x width`` and scale ``K``.

    Colour is resampled bilinearly (antialiased when shrinking); depth is never interpolated:
    ``sparse`` keeps the nearest point per target pixel, ``gt`` is sampled nearest-neighbour when
    ``dense_gt`` (NYUv2) or treated like sparse depth otherwise (KITTI's semi-dense ground truth).
    """
    K = sample["K"].numpy()
    h, w = image_size(sample)
    out = dict(sample)
    for key in COLOR_KEYS:
        if key in out:
            rgb, _ = resize_image(out[key].permute(1, 2, 0).numpy(), K, (height, width))
            out[key] = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).clamp_(0.0, 1.0)
    for key in DEPTH_KEYS:
        if key in out:
            resize_depth = resize_dense_depth if key == "gt" and dense_gt else resize_sparse_depth
            depth, _ = resize_depth(out[key][0].numpy(), K, (height, width))
            out[key] = torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))[None]
    out["K"] = _matrix(scale_intrinsics(K, width / w, height / h))
    return out


@dataclass(frozen=True)
class Crop:
    """Crop to ``height x width``: ``random`` window, ``center``, or ``bottom`` rows (KITTI: drops the
    sky, where there is no LiDAR, as the 1216x352 crops of the papers and the KITTI benchmark do;
    horizontally centred)."""

    height: int
    width: int
    mode: str = "center"

    def __post_init__(self) -> None:
        if self.mode not in CROP_MODES:
            raise ValueError(f"crop mode {self.mode!r} unknown; use one of {', '.join(CROP_MODES)}")
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"crop size must be positive, got {self.width}x{self.height}")

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        h, w = image_size(sample)
        if self.height > h or self.width > w:
            raise DataError(f"{sample.get('name', 'sample')}: crop {self.width}x{self.height} is larger than "
                            f"the {w}x{h} image; use a smaller crop size")
        if self.mode == "random":
            top = int(rng.integers(0, h - self.height + 1))
            left = int(rng.integers(0, w - self.width + 1))
        elif self.mode == "bottom":
            top, left, _, _ = bottom_center_box(h, w, self.height, self.width)
        else:
            top, left = (h - self.height) // 2, (w - self.width) // 2
        return crop(sample, top, left, self.height, self.width)


@dataclass(frozen=True)
class HFlip:
    """Mirror left-right with probability ``p``."""

    p: float = 0.5

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        return hflip(sample) if rng.random() < self.p else sample


@dataclass(frozen=True)
class Resize:
    """Resize to ``height x width`` (see :func:`resize`)."""

    height: int
    width: int
    dense_gt: bool = True

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        return resize(sample, self.height, self.width, self.dense_gt)


@dataclass(frozen=True)
class ColorJitter:
    """Random brightness, contrast and saturation (factors uniform in ``[1 - s, 1 + s]``), applied
    with the same factors to all colour frames of the sample; depth is untouched."""

    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        b, c, s = (1.0 + rng.uniform(-x, x) for x in (self.brightness, self.contrast, self.saturation))
        out = dict(sample)
        for key in COLOR_KEYS:
            if key in out:
                out[key] = jitter_color(out[key], float(b), float(c), float(s))
        return out


def jitter_color(rgb: torch.Tensor, brightness: float, contrast: float, saturation: float) -> torch.Tensor:
    """Scale brightness, then contrast about the mean grey level, then saturation about each
    pixel's grey level (as torchvision's ColorJitter defines them); result clamped to [0, 1]."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=rgb.dtype)
    out = rgb.mul(brightness).clamp_(0.0, 1.0)
    mean = torch.tensordot(weights, out, dims=1).mean()
    out.sub_(mean).mul_(contrast).add_(mean).clamp_(0.0, 1.0)
    grey = torch.tensordot(weights, out, dims=1)
    return out.sub_(grey).mul_(saturation).add_(grey).clamp_(0.0, 1.0)


@dataclass(frozen=True)
class SparseFromGT:
    """Set ``sparse`` to ``num_samples`` pixels drawn uniformly, without replacement, from the valid
    ground truth (all of them when fewer are valid): the NYUv2 protocol of Ma & Karaman (500)."""

    num_samples: int = 500

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        gt = sample["gt"]
        valid = torch.nonzero(gt.reshape(-1) > 0).squeeze(1).numpy()
        chosen = torch.from_numpy(rng.choice(valid, size=min(self.num_samples, valid.size), replace=False))
        sparse = torch.zeros(gt.numel(), dtype=gt.dtype)
        sparse[chosen] = gt.reshape(-1)[chosen]
        return {**sample, "sparse": sparse.view_as(gt)}


@dataclass(frozen=True)
class SparseAugment:
    """Density and pattern augmentation of the sparse input (``gt`` untouched), so that a model meets
    the LiDARs of other rigs in training: with probability ``p`` each,

    - ``density``: keep a random share of the points so that a share ``d`` of the pixels holds one,
      ``d`` log-uniform in ``[min_density, max_density]`` (a frame already sparser keeps all its points);
    - ``rows``: drop whole image rows in random bands (a scanning LiDAR's lost or absent rings):
      each band of ``row_band`` rows is dropped with probability ``row_drop``;
    - ``patches``: zero up to ``patches`` random rectangles of 5-25 % of the image side (occlusion,
      dark or specular surfaces, a sensor with a narrower field of view).

    Densities are fractions of the pixels (KITTI's HDL-64E: about 0.04 at full resolution; DDAD's
    non-scanning LiDAR 0.002-0.005).
    """

    min_density: float = 0.002
    max_density: float = 0.05
    p_density: float = 0.8
    p_rows: float = 0.3
    row_drop: float = 0.5
    row_band: int = 2
    p_patches: float = 0.3
    patches: int = 3

    def __post_init__(self) -> None:
        if not 0.0 < self.min_density <= self.max_density <= 1.0:
            raise ValueError(f"SparseAugment needs 0 < min_density <= max_density <= 1, got {self.min_density}, "
                             f"{self.max_density}")
        for name in ("p_density", "p_rows", "row_drop", "p_patches"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SparseAugment.{name} must be a probability in [0, 1], got {getattr(self, name)}")
        if self.row_band < 1 or self.patches < 0:
            raise ValueError(f"SparseAugment needs row_band >= 1 and patches >= 0, got {self.row_band}, {self.patches}")

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        sparse = sample["sparse"]
        keep = sparse > 0
        h, w = sparse.shape[-2:]
        if rng.random() < self.p_density:
            target = float(np.exp(rng.uniform(np.log(self.min_density), np.log(self.max_density))))
            share = target * h * w / max(int(keep.sum()), 1)
            if share < 1.0:
                keep = keep & torch.from_numpy(rng.random((h, w)) < share)
        if rng.random() < self.p_rows:
            bands = torch.from_numpy(rng.random(-(-h // self.row_band)) >= self.row_drop)
            keep = keep & bands.repeat_interleave(self.row_band)[:h].view(h, 1)
        if rng.random() < self.p_patches:
            for _ in range(int(rng.integers(1, self.patches + 1))):
                ph, pw = (int(rng.uniform(0.05, 0.25) * n) + 1 for n in (h, w))
                top, left = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
                keep[..., top:top + ph, left:left + pw] = False
        return {**sample, "sparse": torch.where(keep, sparse, torch.zeros_like(sparse))}


@dataclass(frozen=True)
class Compose:
    """Apply transforms in order, all drawing from the same generator."""

    transforms: Sequence[Transform]

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        for transform in self.transforms:
            sample = transform(sample, rng)
        return sample
