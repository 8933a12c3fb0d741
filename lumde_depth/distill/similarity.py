"""Feature similarities for similarity-preserving distillation.

:func:`local_similarity` is the LSPKD affinity (Jeong et al., Sensors 2022, eq. 6-7): the cosine
similarity of each pixel's L2-normalised feature to its 8 neighbours, ``S`` of shape B x 8 x H x W.
It is built from 8 shifted slices of one padded tensor, so it needs O(B*C*H*W + B*8*H*W) memory,
independent of how many pixels there are squared.

:func:`global_similarity` is the per-image pixel-by-pixel cosine similarity used by global SPKD
(Yoon et al. 2020, the image-matting form of Tung & Mori's similarity-preserving KD), B x HW x HW:
its memory grows with (H*W)^2 and it is here to show that gap.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: The 8-neighbourhood (dy, dx), row-major, the centre left out; the channel order of ``S``.
NEIGHBOURS: tuple[tuple[int, int], ...] = tuple(
    (dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))

PADDINGS = ("zero", "replicate")


def normalize_pixels(feat: torch.Tensor) -> torch.Tensor:
    """L2-normalise every pixel's feature vector (B x C x H x W, over C); all-zero vectors stay 0."""
    _check_feature(feat)
    return F.normalize(feat, p=2.0, dim=1, eps=1e-12)


def local_similarity(feat: torch.Tensor, padding: str = "zero") -> torch.Tensor:
    """Cosine similarity of each pixel to its 8 neighbours: B x C x H x W -> B x 8 x H x W.

    Channel ``j`` holds ``f(y, x) . f(y + dy_j, x + dx_j)`` with ``(dy_j, dx_j) = NEIGHBOURS[j]``.
    Outside the image, ``padding="zero"`` takes a zero neighbour (similarity 0) and
    ``padding="replicate"`` repeats the border pixel (similarity 1 for a non-zero feature). Teacher
    and student are padded the same way, so either choice adds no error at the border.
    """
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    f = normalize_pixels(feat)
    h, w = f.shape[-2:]
    padded = F.pad(f, (1, 1, 1, 1), mode="constant" if padding == "zero" else "replicate")
    return torch.stack([(f * padded[:, :, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]).sum(dim=1)
                        for dy, dx in NEIGHBOURS], dim=1)


def global_similarity(feat: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every pixel to every pixel of its image: B x C x H x W -> B x HW x HW."""
    f = normalize_pixels(feat).flatten(2)
    return f.transpose(1, 2) @ f


def _check_feature(feat: torch.Tensor) -> None:
    if not isinstance(feat, torch.Tensor) or feat.dim() != 4:
        shape = tuple(feat.shape) if isinstance(feat, torch.Tensor) else type(feat).__name__
        raise ValueError(f"expected a B x C x H x W feature map, got {shape}")
