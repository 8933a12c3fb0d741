"""Depth metrics with the benchmarks' conventions.

- :func:`kitti_metrics`: KITTI depth completion devkit. RMSE and MAE in mm, iRMSE and iMAE in 1/km,
  over pixels with ground truth > 0, for one image; the benchmark averages these per-image values
  over images (:class:`MetricAccumulator`).
- :func:`nyu_metrics`: NYUv2 (sparse-to-dense protocol). RMSE (m), REL, delta < 1.25^k over
  ground truth > 1e-4.
- :func:`mono_metrics`: Eigen / Monodepth2 monocular protocol (AbsRel, SqRel, RMSE, RMSE log,
  delta < 1.25^k), optional per-image median scaling, depth capped to ``[min_depth, max_depth]``.

Inputs are numpy arrays or torch tensors of one image: ``(H, W)``, ``(1, H, W)`` or ``(1, 1, H, W)``.
Computed in float64. An image without valid ground truth gives NaN values (and is skipped by the
accumulator).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

#: Predictions are clamped to at least this (m) before inverting, so a zero prediction gives a large,
#: finite inverse error instead of inf (the devkit fills holes by interpolation instead).
MIN_PRED = 1e-3

KITTI_KEYS = ("rmse", "mae", "irmse", "imae")
NYU_KEYS = ("rmse", "rel", "d1", "d2", "d3")
MONO_KEYS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "d1", "d2", "d3")


def to_numpy(x: Any) -> np.ndarray:
    """A numpy float64 copy of an array or torch tensor (detached, on the CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().to("cpu").double().numpy()  # via double: numpy has no bfloat16
    return np.asarray(x, dtype=np.float64)


def _image(x: Any, name: str) -> np.ndarray:
    a = to_numpy(x)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"{name} must be one image (H, W), (1, H, W) or (1, 1, H, W), got shape {a.shape}; "
                         f"use MetricAccumulator.update for batches")
    return a


def _pair(pred: Any, gt: Any) -> tuple[np.ndarray, np.ndarray]:
    p, g = _image(pred, "pred"), _image(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred {p.shape} and gt {g.shape} differ in size: resize the prediction to the "
                         f"ground truth first")
    return p, g


def _check_finite(p: np.ndarray) -> None:
    if not np.all(np.isfinite(p)):
        raise ValueError(f"prediction has {int(np.sum(~np.isfinite(p)))} NaN/inf values at evaluated pixels")


def _deltas(p: np.ndarray, g: np.ndarray) -> dict[str, float]:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.maximum(p / g, g / p)
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    return {f"d{k}": float(np.mean(ratio < 1.25 ** k)) for k in (1, 2, 3)}


def kitti_metrics(pred: Any, gt: Any) -> dict[str, float]:
    """KITTI devkit errors of one image: ``rmse``, ``mae`` (mm), ``irmse``, ``imae`` (1/km), over gt > 0."""
    p, g = _pair(pred, gt)
    mask = g > 0
    if not mask.any():
        return dict.fromkeys(KITTI_KEYS, float("nan"))
    p, g = p[mask], g[mask]
    _check_finite(p)
    err = p - g
    inv_err = 1.0 / np.maximum(p, MIN_PRED) - 1.0 / g
    return {"rmse": float(np.sqrt(np.mean(err ** 2)) * 1e3), "mae": float(np.mean(np.abs(err)) * 1e3),
            "irmse": float(np.sqrt(np.mean(inv_err ** 2)) * 1e3), "imae": float(np.mean(np.abs(inv_err)) * 1e3)}


def nyu_metrics(pred: Any, gt: Any) -> dict[str, float]:
    """NYUv2 errors of one image: ``rmse`` (m), ``rel``, ``d1``, ``d2``, ``d3`` over gt > 1e-4."""
    p, g = _pair(pred, gt)
    mask = g > 1e-4
    if not mask.any():
        return dict.fromkeys(NYU_KEYS, float("nan"))
    p, g = p[mask], g[mask]
    _check_finite(p)
    err = p - g
    return {"rmse": float(np.sqrt(np.mean(err ** 2))), "rel": float(np.mean(np.abs(err) / g)), **_deltas(p, g)}


def garg_crop_mask(height: int, width: int) -> np.ndarray:
    """The Garg / Eigen-split evaluation crop used by Monodepth2 on KITTI (boolean (H, W))."""
    mask = np.zeros((height, width), dtype=bool)
    mask[int(0.40810811 * height):int(0.99189189 * height), int(0.03594771 * width):int(0.96405229 * width)] = True
    return mask


def mono_metrics(pred: Any, gt: Any, median_scale: bool = True, min_depth: float = 1e-3, max_depth: float = 80.0,
                 garg_crop: bool = False) -> dict[str, float]:
    """Monocular depth errors of one image (Eigen / Monodepth2 protocol).

    Pixels with ``min_depth < gt < max_depth`` (and inside the Garg crop when ``garg_crop``) count.
    With ``median_scale`` the prediction is multiplied by ``median(gt) / median(pred)`` over those
    pixels (self-supervised depth has no metric scale); the factor is returned as ``scale``. The
    prediction is then capped to ``[min_depth, max_depth]``.
    """
    p, g = _pair(pred, gt)
    mask = (g > min_depth) & (g < max_depth)
    if garg_crop:
        mask &= garg_crop_mask(*g.shape)
    if not mask.any():
        return dict.fromkeys(MONO_KEYS + ("scale",), float("nan"))
    p, g = p[mask], g[mask]
    _check_finite(p)
    scale = 1.0
    if median_scale:
        median = float(np.median(p))
        if median <= 0:
            raise ValueError(f"median prediction is {median}: cannot median-scale a non-positive prediction")
        scale = float(np.median(g)) / median
    p = np.clip(p * scale, min_depth, max_depth)
    err = p - g
    return {"abs_rel": float(np.mean(np.abs(err) / g)), "sq_rel": float(np.mean(err ** 2 / g)),
            "rmse": float(np.sqrt(np.mean(err ** 2))),
            "rmse_log": float(np.sqrt(np.mean((np.log(p) - np.log(g)) ** 2))), **_deltas(p, g), "scale": scale}


class MetricAccumulator:
    """Averages a per-image metric function over a dataset, image by image (the KITTI / NYUv2 way).

    ``update(pred, gt)`` takes one image or a batch (``(B, 1, H, W)``, or ``(B, H, W)`` with B > 1);
    images without valid ground truth are counted in ``skipped`` and left out of the mean.
    """

    def __init__(self, metric: Callable[..., dict[str, float]] = kitti_metrics, **kwargs: Any) -> None:
        self.metric, self.kwargs = metric, kwargs
        self.sums: dict[str, float] = {}
        self.count = 0
        self.skipped = 0

    def add(self, values: dict[str, float]) -> None:
        """Add one image's metric dict (as returned by the metric function)."""
        if any(np.isnan(v) for v in values.values()):
            self.skipped += 1
            return
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.count += 1

    def update(self, pred: Any, gt: Any) -> list[dict[str, float]]:
        """Evaluate and add each image of ``pred`` / ``gt``; returns the per-image dicts."""
        p, g = to_numpy(pred), to_numpy(gt)
        if p.shape != g.shape:
            raise ValueError(f"pred {p.shape} and gt {g.shape} differ in shape")
        if p.ndim == 4:
            p, g = p[:, 0] if p.shape[1] == 1 else p, g[:, 0] if g.shape[1] == 1 else g
        elif p.ndim == 2:
            p, g = p[None], g[None]
        if p.ndim != 3:
            raise ValueError(f"expected (H, W), (B, H, W) or (B, 1, H, W), got shape {to_numpy(pred).shape}")
        results = [self.metric(pi, gi, **self.kwargs) for pi, gi in zip(p, g)]
        for values in results:
            self.add(values)
        return results

    def result(self) -> dict[str, float]:
        """Mean of each metric over the images counted so far (empty before the first one)."""
        return {key: value / self.count for key, value in self.sums.items()}
