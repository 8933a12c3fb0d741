"""Evaluation with the KITTI, NYUv2 or monocular protocol (DESIGN.md section 8) on any dataset of the package.

Metrics are computed per image by :mod:`lumde_depth.engine.metrics` (over pixels with ground
truth) and averaged over images, as the KITTI devkit does. Predictions are clamped to the model's
depth range first, except under the monocular protocols, which fix the unknown scale of a
self-supervised prediction first: ``mono`` by per-image median scaling to the ground truth (the
Eigen / Monodepth2 protocol), ``mono_lidar`` by the scale the LiDAR points give
(:func:`lumde_depth.geometry.scale.lidar_scale`, what the node does at run time; frames with too
few points are skipped). Both cap depth to 80 m after scaling.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from lumde_depth.engine.datasets import to_device
from lumde_depth.engine.experiment import PROTOCOL_METRICS
from lumde_depth.engine.metrics import MONO_KEYS, MetricAccumulator, kitti_metrics, mono_metrics, nyu_metrics
from lumde_depth.engine.objective import predict
from lumde_depth.geometry.scale import lidar_scale

MONO_PROTOCOLS = ("mono", "mono_lidar")


def metric_function(protocol: str):
    """The per-image metric function of ``protocol``."""
    if protocol not in PROTOCOL_METRICS:
        raise ValueError(f"unknown protocol '{protocol}'; use one of {', '.join(PROTOCOL_METRICS)}")
    return {"kitti": kitti_metrics, "nyu": nyu_metrics, "mono": mono_metrics, "mono_lidar": lidar_mono_metrics}[protocol]


def lidar_mono_metrics(pred: torch.Tensor, gt: torch.Tensor, sparse: torch.Tensor) -> dict[str, float]:
    """Monocular metrics of one image after scaling the prediction by the LiDAR (all NaN without
    enough LiDAR points, so the accumulator skips the image); ``scale`` is the factor used."""
    scale = lidar_scale(pred.squeeze().numpy(), sparse.squeeze().numpy())
    if scale != scale:
        return dict.fromkeys(MONO_KEYS + ("scale",), float("nan"))
    return {**mono_metrics(pred * scale, gt, median_scale=False), "scale": scale}


@torch.no_grad()
def evaluate(model: torch.nn.Module, dataset: Dataset, protocol: str = "kitti", kind: str = "completion",
             batch_size: int = 1, depth_range: Sequence[float] | None = None, device: str | torch.device = "cpu",
             max_samples: int | None = None, progress: bool = False) -> dict[str, float]:
    """Mean per-image metrics of ``model`` on ``dataset`` plus ``samples`` (images with ground truth)."""
    metric = metric_function(protocol)
    accumulator = MetricAccumulator(metric)
    device = torch.device(device)
    model = model.to(device).eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    limit = min(len(dataset), max_samples if max_samples is not None else len(dataset))
    seen = 0
    with tqdm(total=limit, desc=f"eval {protocol}", disable=not progress) as bar:
        for batch in loader:
            if "gt" not in batch:
                raise ValueError("the dataset has no ground truth ('gt'); evaluate on a split that has it "
                                 "(e.g. val)")
            take = min(limit - seen, batch["rgb"].shape[0])
            batch = to_device(batch, device)
            depth = predict(model, batch, kind)["depth"].float()
            if depth_range is not None and protocol not in MONO_PROTOCOLS:
                depth = depth.clamp(float(depth_range[0]), float(depth_range[1]))
            if protocol == "mono_lidar":
                for pred, gt, sparse in zip(depth[:take].cpu(), batch["gt"][:take].cpu(), batch["sparse"][:take].cpu()):
                    accumulator.add(metric(pred, gt, sparse))
            else:
                accumulator.update(depth[:take].cpu(), batch["gt"][:take].cpu())
            seen += take
            bar.update(take)
            if seen >= limit:
                break
    if accumulator.count == 0:
        raise ValueError("no image of the dataset has valid ground truth; nothing to evaluate")
    return {**accumulator.result(), "samples": accumulator.count}


_NAMES = {"rmse": "RMSE", "mae": "MAE", "irmse": "iRMSE", "imae": "iMAE", "rel": "REL", "d1": "δ1", "d2": "δ2",
          "d3": "δ3", "abs_rel": "AbsRel", "sq_rel": "SqRel", "rmse_log": "RMSE log"}


def metric_unit(name: str, protocol: str) -> str:
    """The unit of a metric under ``protocol`` ('' for ratios)."""
    if name in ("rmse", "mae"):
        return "mm" if protocol == "kitti" else "m"
    return "1/km" if name in ("irmse", "imae") else ""


def metric_label(name: str, protocol: str) -> str:
    """A column title with the unit, e.g. ``RMSE [mm]``."""
    unit = metric_unit(name, protocol)
    return f"{_NAMES.get(name, name)} [{unit}]" if unit else _NAMES.get(name, name)


def format_metrics(metrics: dict[str, float], protocol: str) -> str:
    """One line of the protocol's metrics with their units, e.g. ``RMSE 1234.5 mm, MAE 456.7 mm, ...``."""
    return ", ".join(f"{_NAMES.get(n, n)} {format_value(metrics[n])}{' ' if metric_unit(n, protocol) else ''}"
                     f"{metric_unit(n, protocol)}" for n in PROTOCOL_METRICS[protocol] if n in metrics)


def format_table(rows: dict[str, dict[str, float]], protocol: str) -> str:
    """A markdown table, one row per model / setting, the protocol's metrics as columns."""
    names = list(PROTOCOL_METRICS[protocol])
    lines = ["| model | " + " | ".join(metric_label(n, protocol) for n in names) + " |",
             "|---|" + "---:|" * len(names)]
    for label, metrics in rows.items():
        lines.append(f"| {label} | " + " | ".join(format_value(metrics.get(n)) for n in names) + " |")
    return "\n".join(lines)


def write_json(path: str | Path, payload: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def format_value(value: float | None) -> str:
    """A metric for a table: 1 decimal from 100 up (mm, 1/km), else 3 decimals; '–' when absent."""
    if value is None:
        return "–"
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3f}"
