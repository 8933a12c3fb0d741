"""One picture of a synthetic frame for people: camera image, LiDAR points, dense ground truth.

The three panels are stacked (they are 3.3 times wider than tall, so a column reads better than a
row) and labelled; depth uses the turbo colour map on log depth (near = red, far = blue).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from lumde_depth.data.synth.frame import Frame

_TURBO = np.array([[0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
                   [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
                   [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973]])
"""Turbo colour map (Mikhailov, Google 2019): polynomial fit coefficients per channel."""


def depth_colours(depth: np.ndarray, near: float = 2.0, far: float = 80.0) -> np.ndarray:
    """``(..., 3)`` uint8 turbo colours of metric depths (log scale, ``near`` red, ``far`` blue)."""
    x = np.clip((np.log(far) - np.log(np.clip(depth, near, far))) / (np.log(far) - np.log(near)), 0.0, 1.0)
    powers = np.stack([x ** i for i in range(6)], axis=-1)
    return (np.clip(powers @ _TURBO.T, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def preview_image(frame: Frame, scale: float = 0.5) -> np.ndarray:
    """``(3H', W', 3)`` uint8: RGB, projected LiDAR over the dimmed image, dense depth (sky black)."""
    rgb = frame.rgb
    grey = (rgb.mean(axis=2, keepdims=True) * 0.35).astype(np.uint8).repeat(3, axis=2)
    lidar = grey.copy()
    rows, cols = np.nonzero(frame.sparse > 0)
    colours = depth_colours(frame.sparse[rows, cols])
    h, w = frame.sparse.shape
    for dr in (0, 1):        # 2x2 dots stay visible after downscaling
        for dc in (0, 1):
            lidar[np.minimum(rows + dr, h - 1), np.minimum(cols + dc, w - 1)] = colours
    dense = depth_colours(frame.depth)
    dense[frame.depth <= 0] = 0
    panels = []
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    for image, label in ((rgb, "camera"), (lidar, f"LiDAR ({len(rows)} px)"), (dense, "dense ground truth")):
        panel = Image.fromarray(image).resize(size, Image.Resampling.BILINEAR)
        ImageDraw.Draw(panel).text((6, 4), label, fill=(255, 255, 255))
        panels.append(np.asarray(panel))
    return np.concatenate(panels, axis=0)


def save_preview(path: str | Path, frame: Frame, scale: float = 0.5) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(preview_image(frame, scale)).save(path, optimize=True)
    return path
