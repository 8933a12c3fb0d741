"""CDSPN black-box distillation (Liu, thesis 2023, eqs. 4.1-4.5): only the teacher's depth is used.

    L = (1 - l1 - l2) * MSE_masked(D_s, D_gt) + l1 * MSE(D_t, D_s) + l2 * MSE(g(D_t), g(D_s))

``MSE_masked`` averages over pixels where the ground truth is > 0; ``g`` is the first-order Sobel
gradient (x and y) from :func:`kornia.filters.spatial_gradient` (normalised kernel). The teacher
may be any model, an exported file or a cache of its predictions.
"""
from __future__ import annotations

from typing import Mapping

import kornia
import torch
import torch.nn.functional as F
from torch import nn

from lumde_depth.distill.supervision import logged, masked_error, student_depth, target_depth, teacher_depth


def depth_gradient(depth: torch.Tensor) -> torch.Tensor:
    """B x 1 x H x W -> B x 1 x 2 x H x W (d/dx, d/dy), Sobel, replicate border."""
    return kornia.filters.spatial_gradient(depth, mode="sobel", order=1, normalized=True)


class BlackBoxLoss(nn.Module):
    """The CDSPN loss; ``forward(student_out, teacher_out, batch) -> (total, parts)``."""

    def __init__(self, lambda1: float = 0.1, lambda2: float = 0.1, target: str = "gt") -> None:
        super().__init__()
        if lambda1 < 0 or lambda2 < 0 or lambda1 + lambda2 > 1:
            raise ValueError(f"black-box weights need lambda1, lambda2 >= 0 and lambda1 + lambda2 <= 1, "
                             f"got {lambda1}, {lambda2}")
        self.lambda1, self.lambda2, self.target = float(lambda1), float(lambda2), target

    #: Black-box distillation reads the teacher's depth only.
    required_features: tuple[str, ...] = ()

    @property
    def needs_teacher(self) -> bool:
        return self.lambda1 > 0 or self.lambda2 > 0

    def forward(self, student_out: Mapping[str, torch.Tensor], teacher_out: Mapping[str, torch.Tensor] | None,
                batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        ds = student_depth(student_out)
        gt_term = masked_error(ds, target_depth(batch, self.target, ds), squared=True)
        parts = {"gt": gt_term}
        total = (1.0 - self.lambda1 - self.lambda2) * gt_term
        if self.needs_teacher:
            dt = teacher_depth(teacher_out, ds)
            parts["teacher_depth"] = F.mse_loss(ds, dt)
            parts["teacher_grad"] = F.mse_loss(depth_gradient(ds), depth_gradient(dt))
            total = total + self.lambda1 * parts["teacher_depth"] + self.lambda2 * parts["teacher_grad"]
        return total, logged(total, parts)

