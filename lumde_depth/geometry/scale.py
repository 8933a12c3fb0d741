"""Metric scale of a monocular depth map from LiDAR points.

A self-supervised monocular network predicts depth up to an unknown scale. Where a LiDAR scan
projects into the image, the scale is the median ratio of LiDAR depth to predicted depth over
the pixels that hold a point: robust to the occlusion artefacts of a LiDAR mounted apart from the
camera and to a few outliers. ``lumde eval`` (protocol ``mono_lidar``) and the node's ``auto``
mode use it.
"""
from __future__ import annotations

import numpy as np

#: Fewest LiDAR points that give a usable scale.
MIN_POINTS = 20


def lidar_scale(pred: np.ndarray, sparse: np.ndarray, min_points: int = MIN_POINTS) -> float:
    """``median(sparse / pred)`` over pixels with a LiDAR point and a positive finite prediction.

    ``pred`` and ``sparse`` are ``(H, W)`` metres (0 in ``sparse`` = no point). Returns NaN when
    fewer than ``min_points`` pixels qualify (no LiDAR in view: keep the previous scale).
    """
    pred = np.asarray(pred, dtype=np.float64)
    sparse = np.asarray(sparse, dtype=np.float64)
    if pred.shape != sparse.shape:
        raise ValueError(f"prediction {pred.shape} and sparse depth {sparse.shape} differ in size: project the "
                         "LiDAR into the prediction's image size first")
    valid = (sparse > 0) & np.isfinite(sparse) & (pred > 0) & np.isfinite(pred)
    if int(valid.sum()) < min_points:
        return float("nan")
    return float(np.median(sparse[valid] / pred[valid]))
