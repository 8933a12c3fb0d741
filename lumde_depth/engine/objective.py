"""What one training step optimises: the student model plus its loss (with learnable adapters).

:class:`Objective` holds both as sub-modules, so a single ``DistributedDataParallel`` wrapper
synchronises the model's gradients and those of the loss's 1x1 adapters (LSPKD's phi) alike, and
one optimizer owns them all. The teacher stays outside: its output is computed without gradients
and passed in.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from lumde_depth.config import ConfigError, from_dict


def predict(model: nn.Module, batch: Mapping[str, Any], kind: str) -> dict[str, torch.Tensor]:
    """Run a completion model on (rgb, sparse) or a monocular one on rgb; returns its output dict."""
    out = model(batch["rgb"], batch["sparse"]) if kind == "completion" else model(batch["rgb"])
    if not isinstance(out, Mapping) or "depth" not in out:
        raise TypeError(f"model must return a dict with 'depth', got {type(out).__name__}; "
                        "see lumde_depth.models for the output contract")
    return out


def parse_loss_config(data: Mapping[str, Any]) -> Any:
    """The ``loss`` section as the distillation package's validated ``LossConfig``."""
    from lumde_depth.distill.losses import LossConfig
    return from_dict(LossConfig, dict(data))


def needs_teacher(loss_cfg: Any) -> bool:
    """Whether the loss has terms that read a teacher's output (then only ``lumde distill`` can run it)."""
    if loss_cfg.method == "blackbox":
        return loss_cfg.lambda1 > 0 or loss_cfg.lambda2 > 0
    if loss_cfg.method == "lumde":
        kd = loss_cfg.lumde.kd
        return kd.pixel > 0 or kd.pairwise > 0 or kd.adversarial > 0
    return loss_cfg.w1 > 0 or bool(loss_cfg.terms)


def build_loss(data: Mapping[str, Any], student: nn.Module, teacher: Any = None) -> nn.Module:
    """The loss module of the ``loss`` section (see lumde_depth.distill.build_loss)."""
    from lumde_depth.distill.losses import build_loss as distill_build_loss
    loss_cfg = parse_loss_config(data)
    if teacher is None and needs_teacher(loss_cfg):
        raise ConfigError("the loss distils from a teacher (w1 / feature terms / lambda1, lambda2 > 0): run it "
                          "with `lumde distill` and a teacher.source, or for plain training set "
                          "loss: {method: lspkd, w1: 0, terms: []} (L1), {method: blackbox, lambda1: 0, "
                          "lambda2: 0} (MSE) or {method: lumde, lumde: {kd: {pixel: 0, pairwise: 0, "
                          "adversarial: 0}}} (self-supervised)")
    from lumde_depth.distill.teachers import TeacherError
    try:
        return distill_build_loss(loss_cfg, student=student, teacher=teacher)
    except TeacherError as exc:
        raise ConfigError(f"teacher: {exc}") from None


class Objective(nn.Module):
    """``forward(batch, teacher_out, target) -> (loss, parts)`` for the model and its loss."""

    def __init__(self, model: nn.Module, loss: nn.Module, kind: str) -> None:
        super().__init__()
        self.model, self.loss, self.kind = model, loss, kind

    def forward(self, batch: Mapping[str, Any], teacher_out: Mapping[str, torch.Tensor] | None,
                target: str = "depth") -> tuple[torch.Tensor, dict[str, float]]:
        out = predict(self.model, batch, self.kind)
        if target != "depth":
            if target not in out:
                raise ConfigError(f"stage target '{target}' is not an output of the model (it returns: "
                                  f"{', '.join(sorted(out))})")
            out = {**out, "depth": out[target]}
        return self.loss(out, teacher_out, batch)
