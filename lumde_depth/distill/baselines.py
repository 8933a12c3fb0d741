"""Baseline feature distillations the LSPKD paper compares with (Tables 1-2, section 3.4.3).

- :class:`ATTTerm`: attention transfer (Zagoruyko & Komodakis, ICLR 2017). The attention map of
  a feature is ``mean_c |F|^p`` (p = 2) flattened and L2-normalised per image; the loss is the mean
  squared difference of the student's and teacher's maps, as in the authors' code (which also
  scales it by beta = 1000: put that into the term's weight).
- :class:`PROBTerm`: probabilistic knowledge transfer (Passalis & Tefas, ECCV 2018). Each sample
  of the batch is one vector (its flattened feature); cosine similarities between the samples,
  shifted to [0, 1], are turned into per-row conditional probabilities and the loss is
  KL(teacher || student) averaged over the B x B entries, as in the authors' code. It compares
  samples with each other, so a batch of one sample gives 0.
- :class:`SPKDTerm`: global similarity-preserving KD on the H*W x H*W pixel cosine similarity of
  each image (:func:`lumde_depth.distill.similarity.global_similarity`), mean squared difference.
  Its memory is O((H*W)^2) per image and layer: the reason LSPKD exists.

None of these depends on the channel count, so the student needs no adapter.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lumde_depth.distill.features import DEFAULT_LAYERS, pair
from lumde_depth.distill.similarity import global_similarity

PROB_EPS = 1e-7


def attention_map(feat: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """B x C x H x W -> B x HW: ``mean_c |F|^p`` per pixel, L2-normalised per image."""
    return F.normalize(feat.abs().pow(p).mean(dim=1).flatten(1), p=2.0, dim=1)


def attention_loss(fs: torch.Tensor, ft: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """Mean squared difference of the normalised attention maps of ``fs`` and ``ft``."""
    return (attention_map(fs, p) - attention_map(ft, p)).pow(2).mean()


def sample_probabilities(feat: torch.Tensor) -> torch.Tensor:
    """B x ... -> B x B: cosine similarity kernel between samples, in [0, 1], rows summing to 1."""
    flat = F.normalize(feat.flatten(1), p=2.0, dim=1)
    kernel = (flat @ flat.t() + 1.0) / 2.0
    return kernel / kernel.sum(dim=1, keepdim=True)


def prob_loss(fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
    """KL divergence between the teacher's and student's sample-similarity distributions."""
    ps, pt = sample_probabilities(fs), sample_probabilities(ft)
    return (pt * torch.log((pt + PROB_EPS) / (ps + PROB_EPS))).mean()


def spkd_loss(fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the per-image global pixel similarities (B x HW x HW)."""
    return F.mse_loss(global_similarity(fs), global_similarity(ft))


class _LayerwiseTerm(nn.Module):
    """Sum over ``layers`` of a parameter-free loss between student and teacher features."""

    name = ""

    def __init__(self, layers: Sequence[str] = DEFAULT_LAYERS, size_mismatch: str = "error") -> None:
        super().__init__()
        self.layers = tuple(layers)
        self.size_mismatch = size_mismatch

    def layer_loss(self, fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, student_out: Mapping[str, torch.Tensor],
                teacher_out: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        total = None
        for layer in self.layers:
            value = self.layer_loss(*pair(student_out, teacher_out, layer, self.size_mismatch))
            total = value if total is None else total + value
        return {self.name: total}


class ATTTerm(_LayerwiseTerm):
    """Attention transfer over ``layers``."""

    name = "att"

    def __init__(self, layers: Sequence[str] = DEFAULT_LAYERS, p: float = 2.0, size_mismatch: str = "error") -> None:
        super().__init__(layers, size_mismatch)
        self.p = float(p)

    def layer_loss(self, fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
        return attention_loss(fs, ft, self.p)


class PROBTerm(_LayerwiseTerm):
    """Probabilistic knowledge transfer over ``layers`` (samples of the batch compared)."""

    name = "prob"

    def layer_loss(self, fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
        return prob_loss(fs, ft)


class SPKDTerm(_LayerwiseTerm):
    """Global (H*W x H*W) similarity-preserving KD over ``layers``."""

    name = "spkd"

    def layer_loss(self, fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
        return spkd_loss(fs, ft)
