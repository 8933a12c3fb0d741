"""LUMDE distillation of a monocular student from a frozen teacher.

Three terms (Liu et al.'s structured distillation, as LUMDE uses it):

- **pixel-wise**: L1 between the student's and the teacher's log-depth;
- **pair-wise**: the student's pooled features must keep the teacher's pixel-to-pixel cosine
  similarities (:func:`~lumde_depth.distill.similarity.global_similarity` on features average-
  pooled to a small grid, so the HW x HW matrix stays tiny);
- **holistic** (adversarial): a Transformer critic tells teacher depth (real) from student depth
  (fake). We use WGAN-GP (Gulrajani et al. 2017): the critic minimises
  ``D(fake) - D(real) + gp * (||grad D(mix)|| - 1)^2`` and the student minimises ``-D(fake)``;
  critic and student steps alternate. WGAN-GP was chosen because the critic's score stays
  informative when the student is already close, where a saturating GAN loss vanishes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from lumde_depth.config import field
from lumde_depth.distill.similarity import global_similarity


@dataclass
class MonoKDConfig:
    pixel: float = field(1.0, low=0.0, doc="weight of the pixel-wise log-depth L1")
    pairwise: float = field(1.0, low=0.0, doc="weight of the pair-wise similarity term")
    pairwise_layers: list[str] = field(default_factory=lambda: ["E4", "D3"], doc="features compared pair-wise")
    pool_grid: list[int] = field(default_factory=lambda: [6, 20], doc="grid the features are pooled to")
    adversarial: float = field(0.01, low=0.0, doc="weight of the student's adversarial term (0 = off)")
    gradient_penalty: float = field(10.0, low=0.0, doc="WGAN-GP penalty weight")
    critic_steps: int = field(1, low=1, high=10, doc="critic updates per student update")


def pairwise_similarity_loss(fs: torch.Tensor, ft: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """MSE between the pooled-feature cosine-similarity matrices of student and teacher."""
    ps = F.adaptive_avg_pool2d(fs, grid)
    pt = F.adaptive_avg_pool2d(ft, grid)
    return F.mse_loss(global_similarity(ps), global_similarity(pt))


class MonoDistillLoss(nn.Module):
    """Pixel-wise + pair-wise terms: ``forward(student_out, teacher_out)`` -> (loss, parts)."""

    def __init__(self, cfg: MonoKDConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or MonoKDConfig()

    def forward(self, student_out: Mapping[str, torch.Tensor],
                teacher_out: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        ds, dt = student_out["depth"], teacher_out["depth"].detach()
        pixel = (ds.clamp_min(1e-3).log() - dt.clamp_min(1e-3).log()).abs().mean()
        grid = (int(self.cfg.pool_grid[0]), int(self.cfg.pool_grid[1]))
        pair = ds.new_zeros(())
        for layer in self.cfg.pairwise_layers:
            if layer not in student_out or layer not in teacher_out:
                raise KeyError(f"pair-wise distillation needs feature '{layer}' from both networks; "
                               f"student has {sorted(student_out)}, teacher has {sorted(teacher_out)}")
            pair = pair + pairwise_similarity_loss(student_out[layer], teacher_out[layer].detach(), grid)
        total = self.cfg.pixel * pixel + self.cfg.pairwise * pair
        return total, {"kd_pixel": float(pixel.detach()), "kd_pairwise": float(pair.detach())}


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: (||grad_x D(x)||_2 - 1)^2 at random interpolates of real and fake samples."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mix = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mix).sum(), mix, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def critic_loss(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, gp_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    """The critic's WGAN-GP loss (teacher depth real, student depth fake; both detached)."""
    real, fake = real.detach(), fake.detach()
    d_real, d_fake = critic(real).mean(), critic(fake).mean()
    gp = gradient_penalty(critic, real, fake)
    loss = d_fake - d_real + gp_weight * gp
    return loss, {"critic": float(loss.detach()), "wasserstein": float((d_real - d_fake).detach()),
                  "gp": float(gp.detach())}


def generator_loss(critic: nn.Module, fake: torch.Tensor) -> torch.Tensor:
    """The student's adversarial loss: make the critic score its depth as real."""
    return -critic(fake).mean()
