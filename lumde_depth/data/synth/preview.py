"""One picture of a synthetic frame for people: camera image, LiDAR points, dense ground truth.

The three panels are stacked (they are 3.3 times wider than tall, so a column reads better than a
row) and labelled; depth uses :func:`lumde_depth.viz.colorize` (turbo on log depth, near = red).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lumde_depth.data.synth.frame import Frame
from lumde_depth.viz import colorize, label, overlay_points, resize, save_png, stack

NEAR, FAR = 2.0, 80.0


def preview_image(frame: Frame, scale: float = 0.5) -> np.ndarray:
    """``(3H', W', 3)`` uint8: RGB, projected LiDAR over the dimmed image, dense depth (sky black)."""
    points = int(np.count_nonzero(frame.sparse > 0))
    panels = ((frame.rgb, "camera"), (overlay_points(frame.rgb, frame.sparse, NEAR, FAR, radius=1), f"LiDAR ({points} px)"),
              (colorize(frame.depth, NEAR, FAR), "dense ground truth"))
    return stack([label(resize(image, scale), text) for image, text in panels], gap=0)


def save_preview(path: str | Path, frame: Frame, scale: float = 0.5) -> Path:
    return save_png(path, preview_image(frame, scale), optimize=True)
