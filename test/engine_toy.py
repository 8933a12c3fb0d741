"""A tiny completion model and data set for the engine tests (imported by configs via ``imports``).

The model has a ``backbone`` (giving ``coarse_depth`` and features E1, D1) and a ``refine`` head,
like CDSPN's backbone + refinement split, so staged training can be tested in seconds. The data
set draws a random horizontal flip from the global torch generator per sample, like the real
training transforms, so reproducible augmentation is exercised.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from lumde_depth.models import names, register

SIZE = 16


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: tiny models run several times faster than with threads fighting for 2 cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class ToyCompletion(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.backbone = nn.ModuleDict({
            "enc": nn.Sequential(nn.Conv2d(4, width, 3, padding=1), nn.ReLU()),
            "dec": nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU()),
            "head": nn.Conv2d(width, 1, 3, padding=1)})
        self.refine = nn.Conv2d(2, 1, 3, padding=1)

    def forward(self, rgb: torch.Tensor, sparse: torch.Tensor) -> dict[str, torch.Tensor]:
        e1 = self.backbone["enc"](torch.cat([rgb, sparse / 10.0], 1))
        d1 = self.backbone["dec"](e1)
        coarse = nn.functional.softplus(self.backbone["head"](d1)) * 10.0
        depth = nn.functional.relu(coarse + self.refine(torch.cat([coarse, sparse], 1)))
        return {"depth": depth, "coarse_depth": coarse, "E1": e1, "D1": d1}


if "toy_completion" not in names():
    register("toy_completion")(ToyCompletion)


class ToyScenes(Dataset):
    """Planes at random depths seen by a fake sensor: depth = a + b * row, rgb a function of depth."""

    def __init__(self, root: str, split: str, frames: int = 24, augment: bool | None = None) -> None:
        self.split, self.frames = split, frames
        self.augment = split == "train" if augment is None else augment

    def __len__(self) -> int:
        return self.frames

    def __getitem__(self, index: int) -> dict:
        g = torch.Generator().manual_seed(index + (1000 if self.split == "val" else 0))
        a, b = 2.0 + 8.0 * torch.rand(1, generator=g), 0.5 * torch.rand(1, generator=g)
        rows = torch.arange(SIZE, dtype=torch.float32).view(1, SIZE, 1).expand(1, SIZE, SIZE)
        gt = a + b * rows + 0.2 * torch.rand(1, SIZE, SIZE, generator=g)
        rgb = torch.cat([gt / 20.0, 1.0 - gt / 20.0, torch.rand(1, SIZE, SIZE, generator=g)]).clamp(0, 1)
        sparse = gt * (torch.rand(1, SIZE, SIZE, generator=g) < 0.2)
        if self.augment and torch.rand(()) < 0.5:
            rgb, sparse, gt = rgb.flip(-1), sparse.flip(-1), gt.flip(-1)
        return {"rgb": rgb, "sparse": sparse, "gt": gt, "K": torch.eye(3), "name": f"{self.split}/{index:04d}"}
