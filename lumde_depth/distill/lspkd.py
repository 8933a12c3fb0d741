"""LSPKD: local similarity-preserving knowledge distillation (Jeong et al., Sensors 2022, eq. 8).

Per distilled layer ``l``::

    L_LS = MSE(F_t, phi(F_s)) + alpha * MSE(S_t, S_s)

with ``phi`` a learnable 1x1 convolution from the student's to the teacher's channel count and
``S`` the 8-neighbour local similarity of :func:`lumde_depth.distill.similarity.local_similarity`.
``S_s`` comes from the student's own feature (the similarity does not depend on the channel count).
The ``phi`` convolutions belong to this module: give ``loss.parameters()`` to the optimizer.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lumde_depth.distill.features import DEFAULT_LAYERS, pair
from lumde_depth.distill.similarity import local_similarity


class LSPKDTerm(nn.Module):
    """Sum over ``layers`` of the feature term and ``alpha`` times the local-similarity term."""

    def __init__(self, student_channels: Mapping[str, int], teacher_channels: Mapping[str, int],
                 layers: Sequence[str] = DEFAULT_LAYERS, alpha: float = 1.0, padding: str = "zero",
                 size_mismatch: str = "error") -> None:
        super().__init__()
        missing = [f"{who} '{layer}'" for layer in layers for who, channels in
                   (("student", student_channels), ("teacher", teacher_channels)) if layer not in channels]
        if missing:
            raise ValueError(f"LSPKD: no channel count for {', '.join(missing)}; the models must return "
                             "these features")
        self.layers = tuple(layers)
        self.alpha = float(alpha)
        self.padding = padding
        self.size_mismatch = size_mismatch
        self.phi = nn.ModuleDict({layer: nn.Conv2d(int(student_channels[layer]), int(teacher_channels[layer]), 1)
                                  for layer in self.layers})

    def forward(self, student_out: Mapping[str, torch.Tensor],
                teacher_out: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{"lspkd_feat": sum of feature MSEs, "lspkd_sim": alpha * sum of similarity MSEs}``."""
        feat = sim = None
        for layer in self.layers:
            fs, ft = pair(student_out, teacher_out, layer, self.size_mismatch)
            f_term = F.mse_loss(self.phi[layer](fs), ft)
            s_term = F.mse_loss(local_similarity(fs, self.padding), local_similarity(ft, self.padding))
            feat = f_term if feat is None else feat + f_term
            sim = s_term if sim is None else sim + s_term
        return {"lspkd_feat": feat, "lspkd_sim": self.alpha * sim}
