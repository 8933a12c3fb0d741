"""Tiny models and batches shared by the distillation tests."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TinyCompletion(nn.Module):
    """A small completion net returning depth and features E1, E2, D1 (like the LSPKD nets' dict)."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.e1 = nn.Conv2d(4, width, 3, stride=2, padding=1)
        self.e2 = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.d1 = nn.Conv2d(2 * width + width, width, 3, padding=1)
        self.head = nn.Conv2d(width, 1, 3, padding=1)

    def forward(self, rgb: torch.Tensor, sparse: torch.Tensor) -> dict[str, torch.Tensor]:
        e1 = F.relu(self.e1(torch.cat([rgb, sparse], 1)))
        e2 = F.relu(self.e2(e1))
        d1 = F.relu(self.d1(torch.cat([F.interpolate(e2, size=e1.shape[-2:]), e1], 1)))
        depth = F.softplus(self.head(F.interpolate(d1, size=rgb.shape[-2:], mode="bilinear"))) + 1.0
        return {"depth": depth, "E1": e1, "E2": e2, "D1": d1}


class TinyMonocular(nn.Module):
    """A monocular net: ``model(rgb)`` -> dict with depth."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 3, padding=1)

    def forward(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"depth": F.softplus(self.conv(rgb))}


def make_batch(b: int = 2, h: int = 16, w: int = 20, seed: int = 0, names: list[str] | None = None) -> dict:
    """A batch like the data sets give: rgb, sparse (5% of pixels), semi-dense gt (50%), name."""
    g = torch.Generator().manual_seed(seed)
    depth = 2.0 + 10.0 * torch.rand(b, 1, h, w, generator=g)
    return {"rgb": torch.rand(b, 3, h, w, generator=g),
            "sparse": depth * (torch.rand(b, 1, h, w, generator=g) < 0.05),
            "gt": depth * (torch.rand(b, 1, h, w, generator=g) < 0.5),
            "name": names or [f"seq/frame_{seed}_{i:03d}" for i in range(b)]}
