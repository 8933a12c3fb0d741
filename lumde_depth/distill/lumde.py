"""The LUMDE training objective: a monocular depth net trained by self-supervision, optionally
distilled from a frozen teacher with pixel-wise, pair-wise and adversarial terms.

:class:`LumdeLoss` owns the pose network (it is trained with the depth net and only serves the
loss) and, when the adversarial weight is > 0, the Transformer critic. The critic is trained by
its own optimizer in alternating steps (:meth:`LumdeLoss.critic_step`); the trainer keeps the
critic's parameters out of the student optimizer (the critic is frozen outside its own step) and,
after each student step, gives the critic the student depth of that step (:attr:`LumdeLoss.fake`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

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
    critic_betas: list[float] = field(default_factory=lambda: [0.5, 0.9], low=0.0, high=1.0,
                                      doc="Adam betas of the critic (WGAN-GP uses low momentum)")


class LumdeLoss(nn.Module):
    """``forward(student_out, teacher_out, batch)`` -> (loss, parts) for a monocular depth net.

    Without a teacher output only the self-supervised loss is used (teacher training, or a
    student trained alone).
    """

    def __init__(self, cfg: LumdeConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or LumdeConfig()
        self.pose = build("lumde_pose", encoder=self.cfg.pose_encoder)
        self.selfsup = SelfSupervisedLoss(self.cfg.selfsup, self.cfg.min_depth, self.cfg.max_depth)
        self.kd = MonoDistillLoss(self.cfg.kd)
        self.critic = build("lumde_discriminator", **self.cfg.critic) if self.cfg.kd.adversarial > 0 else None
        if self.critic is not None:
            # frozen outside critic_step: the student's adversarial term needs gradients for the depth only,
            # and DistributedDataParallel then leaves the critic to its own optimizer
            self.critic.requires_grad_(False)
        #: The student depth of the last distillation forward (detached): the critic's next fake sample.
        self.fake: torch.Tensor | None = None

    @property
    def required_features(self) -> tuple[str, ...]:
        return tuple(self.cfg.kd.pairwise_layers) if self.cfg.kd.pairwise > 0 else ()

    def forward(self, student_out: Mapping[str, torch.Tensor], teacher_out: Mapping[str, torch.Tensor] | None,
                batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        missing = [k for k in ("rgb_prev", "rgb_next", "K") if k not in batch]
        if missing:
            raise KeyError(f"self-supervised training needs frame triplets: batch lacks {missing}; use a "
                           "sequence dataset (kind kitti_raw) that returns rgb_prev / rgb_next and K")
        total, parts = self.selfsup(student_out, batch, self.source_poses(batch))
        if teacher_out is not None:
            kd, kd_parts = self.kd(student_out, teacher_out)
            total = total + kd
            parts.update(kd_parts)
            if self.critic is not None:
                self.fake = student_out["depth"].detach()
                adv = generator_loss(self.critic, student_out["depth"])
                total = total + self.cfg.kd.adversarial * adv
                parts["adversarial"] = float(adv.detach())
        parts["total"] = float(total.detach())
        return total, parts

    def source_poses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``prev`` / ``next``: B x 4 x 4 transforms taking target-frame points into that source frame.

        As in Monodepth2, the pose net always sees a pair in temporal order (earlier, later) and the
        previous frame's motion is inverted: both pairs then ask for the same forward motion, which a
        pose net learns from its first steps. Fed as (target, source), the two pairs ask for opposite
        motions that only the image content can tell apart, and a pose net trained from scratch stays
        at zero motion (where the warp is the identity and the depth gets no signal).
        """
        rgb = batch["rgb"]
        return {"prev": torch.linalg.inv(self.pose(batch["rgb_prev"], rgb)), "next": self.pose(rgb, batch["rgb_next"])}

    def critic_optimizer(self) -> torch.optim.Optimizer:
        """Adam over the critic's parameters (``critic_lr``, ``critic_betas``): the critic's own optimizer."""
        if self.critic is None:
            raise RuntimeError("the loss has no critic (lumde.kd.adversarial is 0)")
        return torch.optim.Adam(self.critic.parameters(), lr=self.cfg.critic_lr, betas=tuple(self.cfg.critic_betas))

    def critic_step(self, student_depth: torch.Tensor, teacher_depth: torch.Tensor,
                    optimizer: torch.optim.Optimizer,
                    sync: Callable[[nn.Module], None] | None = None) -> dict[str, float]:
        """``critic_steps`` WGAN-GP updates of the critic: teacher depth real, student depth fake.

        ``sync(critic)`` runs between backward and step (the trainer averages the critic's
        gradients over processes there under torchrun).
        """
        if self.critic is None:
            raise RuntimeError("critic_step called but the loss has no critic (lumde.kd.adversarial is 0)")
        parts: dict[str, float] = {}
        self.critic.requires_grad_(True)
        try:
            for _ in range(self.cfg.kd.critic_steps):
                loss, parts = critic_loss(self.critic, teacher_depth, student_depth, self.cfg.kd.gradient_penalty)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if sync is not None:
                    sync(self.critic)
                optimizer.step()
        finally:
            optimizer.zero_grad(set_to_none=True)
            self.critic.requires_grad_(False)
        return parts
