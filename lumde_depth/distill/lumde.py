"""The LUMDE training objective: a monocular depth net trained by self-supervision, optionally
distilled from a frozen teacher with pixel-wise, pair-wise and adversarial terms.

:class:`LumdeLoss` owns the pose network (it is trained with the depth net and only serves the
loss) and, when the adversarial weight is > 0, the Transformer critic. The critic is trained by
its own optimizer in alternating steps (:meth:`LumdeLoss.critic_step`); the trainer keeps the
critic's parameters out of the student optimizer (see :attr:`LumdeLoss.critic_prefix`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

from lumde_depth.config import field
from lumde_depth.distill.mono_kd import MonoDistillLoss, MonoKDConfig, critic_loss, generator_loss
from lumde_depth.distill.selfsup import SelfSupConfig, SelfSupervisedLoss
from lumde_depth.models.registry import build


@dataclass
class LumdeConfig:
    pose_encoder: str = field("separable", choices=("resnet18", "separable"),
                              doc="pose net of the trained model (teacher: resnet18, student: separable)")
    min_depth: float = field(0.1, low=1e-3, doc="depth of disparity 1 (must match the depth net)")
    max_depth: float = field(100.0, low=1.0, doc="depth of disparity 0 (must match the depth net)")
    selfsup: SelfSupConfig = field(default_factory=SelfSupConfig)
    kd: MonoKDConfig = field(default_factory=MonoKDConfig)
    critic: dict = field(default_factory=dict, doc="keyword arguments of lumde_discriminator")
    critic_lr: float = field(1e-4, low=0.0, high=1.0, doc="Adam learning rate of the critic")


class LumdeLoss(nn.Module):
    """``forward(student_out, teacher_out, batch)`` -> (loss, parts) for a monocular depth net.

    Without a teacher output only the self-supervised loss is used (teacher training, or a
    student trained alone).
    """

    critic_prefix = "critic."

    def __init__(self, cfg: LumdeConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or LumdeConfig()
        self.pose = build("lumde_pose", encoder=self.cfg.pose_encoder)
        self.selfsup = SelfSupervisedLoss(self.cfg.selfsup, self.cfg.min_depth, self.cfg.max_depth)
        self.kd = MonoDistillLoss(self.cfg.kd)
        self.critic = build("lumde_discriminator", **self.cfg.critic) if self.cfg.kd.adversarial > 0 else None

    @property
    def required_features(self) -> tuple[str, ...]:
        return tuple(self.cfg.kd.pairwise_layers) if self.cfg.kd.pairwise > 0 else ()

    def forward(self, student_out: Mapping[str, torch.Tensor], teacher_out: Mapping[str, torch.Tensor] | None,
                batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        missing = [k for k in ("rgb_prev", "rgb_next", "K") if k not in batch]
        if missing:
            raise KeyError(f"self-supervised training needs frame triplets: batch lacks {missing}; use a "
                           "sequence dataset (kind kitti_raw) that returns rgb_prev / rgb_next and K")
        rgb = batch["rgb"]
        poses = {"prev": self.pose(rgb, batch["rgb_prev"]), "next": self.pose(rgb, batch["rgb_next"])}
        total, parts = self.selfsup(student_out, batch, poses)
        if teacher_out is not None:
            kd, kd_parts = self.kd(student_out, teacher_out)
            total = total + kd
            parts.update(kd_parts)
            if self.critic is not None:
                adv = generator_loss(self.critic, student_out["depth"])
                total = total + self.cfg.kd.adversarial * adv
                parts["adversarial"] = float(adv.detach())
        parts["total"] = float(total.detach())
        return total, parts

    def critic_step(self, student_depth: torch.Tensor, teacher_depth: torch.Tensor,
                    optimizer: torch.optim.Optimizer) -> dict[str, float]:
        """``critic_steps`` WGAN-GP updates of the critic: teacher depth real, student depth fake."""
        parts: dict[str, float] = {}
        for _ in range(self.cfg.kd.critic_steps):
            loss, parts = critic_loss(self.critic, teacher_depth, student_depth, self.cfg.kd.gradient_penalty)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return parts
