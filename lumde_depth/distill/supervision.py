"""Depth-level pieces shared by the distillation losses: picking depths, masked errors, logging."""
from __future__ import annotations

from typing import Mapping

import torch

#: Batch keys a loss may take as its dense-depth target (``sparse``: the paper's sparse-supervision test).
TARGETS = ("gt", "sparse")


def _depth(out: Mapping[str, torch.Tensor] | None, who: str) -> torch.Tensor:
    if out is None or "depth" not in out:
        raise KeyError(f"the {who} output has no 'depth' (B x 1 x H x W metres)")
    depth = out["depth"]
    if not isinstance(depth, torch.Tensor) or depth.dim() != 4 or depth.shape[1] != 1:
        raise ValueError(f"{who} 'depth' must be B x 1 x H x W, got "
                         f"{tuple(depth.shape) if isinstance(depth, torch.Tensor) else type(depth).__name__}")
    return depth


def student_depth(student_out: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The student's predicted depth, checked to be B x 1 x H x W."""
    return _depth(student_out, "student")


def teacher_depth(teacher_out: Mapping[str, torch.Tensor] | None, like: torch.Tensor) -> torch.Tensor:
    """The teacher's depth (detached), checked to have the shape of the student's depth ``like``."""
    depth = _depth(teacher_out, "teacher").detach()
    if depth.shape != like.shape:
        raise ValueError(f"teacher depth is {tuple(depth.shape)} but the student's is {tuple(like.shape)}; "
                         "the teacher must see the same (cropped) input as the student")
    return depth.to(like.dtype)


def target_depth(batch: Mapping[str, torch.Tensor], key: str, like: torch.Tensor) -> torch.Tensor:
    """``batch[key]`` (``gt`` or ``sparse``; 0 = no measurement), checked against the prediction."""
    if key not in batch:
        hint = " (this data set has no ground truth: set the loss `target: sparse`)" if key == "gt" else ""
        raise KeyError(f"the batch has no '{key}' depth to supervise with{hint}")
    target = batch[key]
    if target.shape != like.shape:
        raise ValueError(f"batch '{key}' is {tuple(target.shape)} but the prediction is {tuple(like.shape)}")
    return target


def masked_error(pred: torch.Tensor, target: torch.Tensor, squared: bool) -> torch.Tensor:
    """Mean |pred - target| (or its square) over pixels where ``target > 0``; 0 when there are none."""
    valid = target > 0
    diff = (pred - target).abs()
    if squared:
        diff = diff * diff
    return (diff * valid).sum() / valid.sum().clamp_min(1)


def logged(total: torch.Tensor, parts: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Loss parts as floats for logging, read from the device in one transfer."""
    names = ["total", *parts]
    values = torch.stack([total.detach(), *(p.detach() for p in parts.values())]).float().tolist()
    return dict(zip(names, values))
