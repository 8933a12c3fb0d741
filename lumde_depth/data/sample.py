"""The sample dict shared by all datasets, and the base class that loads, seeds and transforms it."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from lumde_depth.data.depth_io import DataError
from lumde_depth.data.transforms import Sample, Transform


def rgb_tensor(rgb: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> 3xHxW float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().div_(255.0)


def rgb_array(rgb: torch.Tensor) -> np.ndarray:
    """3xHxW float in [0, 1] -> ``(H, W, 3)`` uint8 (rounded): the inverse of :func:`rgb_tensor`."""
    return (rgb.detach().cpu().permute(1, 2, 0).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)


def depth_tensor(depth: np.ndarray) -> torch.Tensor:
    """``(H, W)`` metres -> 1xHxW float32, non-finite and negative values set to 0 (invalid)."""
    depth = np.asarray(depth, dtype=np.float32)
    depth = np.where(np.isfinite(depth) & (depth > 0), depth, np.float32(0.0))
    return torch.from_numpy(np.ascontiguousarray(depth))[None]


def check_same_size(reference: Path, shape: Sequence[int], path: Path, other: Sequence[int]) -> None:
    """Raise a :class:`DataError` naming both files when two images of one frame differ in size."""
    if tuple(shape[:2]) != tuple(other[:2]):
        raise DataError(f"size mismatch: {path} is {other[1]}x{other[0]} but {reference} is {shape[1]}x{shape[0]}; "
                        "the files of one frame must come from the same camera image")


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a folder, else a :class:`DataError` saying what was expected there."""
    if not path.is_dir():
        raise DataError(f"{path}: folder not found (expected {what})")
    return path


def list_files(folder: Path, pattern: str, what: str) -> list[Path]:
    """Sorted files matching ``pattern`` in ``folder``; a :class:`DataError` if there are none."""
    files = sorted(require_dir(folder, what).glob(pattern))
    if not files:
        raise DataError(f"{folder}: no files matching {pattern!r} (expected {what})")
    return files


class FrameDataset(Dataset):
    """Base of the datasets: subclasses implement ``__len__`` and ``load(index, rng) -> Sample``.

    Randomness (augmentation, sparse sampling) comes from one generator per item. With
    ``deterministic=True`` (evaluation) it depends only on ``(seed, index)``, so every epoch and
    every run sees the same sample. Otherwise (training) a third seed word is drawn from torch's
    global generator, which ``torch.manual_seed`` and DataLoader workers seed; training is then
    reproducible from the torch seed yet differs between epochs.
    """

    def __init__(self, transform: Transform | None, seed: int, deterministic: bool) -> None:
        self.transform = transform
        self.seed = int(seed)
        self.deterministic = bool(deterministic)

    def rng(self, index: int) -> np.random.Generator:
        words = [self.seed, int(index)]
        if not self.deterministic:
            words.append(int(torch.randint(0, 2**62, ()).item()))
        return np.random.default_rng(words)

    def load(self, index: int, rng: np.random.Generator) -> Sample:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Sample:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {type(self).__name__} of {len(self)} samples")
        index %= len(self)
        rng = self.rng(index)
        sample = self.load(index, rng)
        return self.transform(sample, rng) if self.transform is not None else sample
