"""NYU Depth v2 in the sparse-to-dense h5 format (Ma & Karaman, ICRA 2018).

Layout: ``<root>/{train,val}/**/*.h5`` (the ``nyudepthv2`` folder of their archive, which may also
be given as ``<root>/nyudepthv2``); each file holds ``rgb`` 3x480x640 uint8 and ``depth`` 480x640
float32 metres. The protocol: halve to 320x240, centre-crop 304x228, sparse input = 500 pixels
sampled from the valid ground truth (fixed per item for evaluation, fresh each epoch for training).
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch

from lumde_depth.data.depth_io import DataError
from lumde_depth.data.sample import FrameDataset, depth_tensor, list_files, rgb_tensor
from lumde_depth.data.transforms import ColorJitter, Compose, Crop, HFlip, Resize, Sample, SparseFromGT, Transform

NYU_K = np.array([[518.857901, 0.0, 325.582449],
                  [0.0, 519.469611, 253.736166],
                  [0.0, 0.0, 1.0]], dtype=np.float32)
"""Colour camera intrinsics of the NYUv2 Kinect at 640x480 (NYU toolbox ``camera_params.m``)."""

SPLITS = ("train", "val")


def nyu_transform(train: bool, size: tuple[int, int] = (228, 304), resize: tuple[int, int] = (240, 320),
                  num_samples: int = 500) -> Transform:
    """The protocol pipeline: resize (480x640 -> ``resize``), centre crop to ``size`` (both
    height, width), augment when training (flip, colour jitter), then sample the sparse input from
    the ground truth."""
    steps: list[Transform] = [Resize(resize[0], resize[1]), Crop(size[0], size[1], "center")]
    if train:
        steps += [HFlip(0.5), ColorJitter(0.4, 0.4, 0.4)]
    steps.append(SparseFromGT(num_samples))
    return Compose(steps)


def read_nyu_h5(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(rgb (H, W, 3) uint8, depth (H, W) float32 metres)`` from one sparse-to-dense h5 file."""
    try:
        with h5py.File(path, "r") as f:
            missing = [key for key in ("rgb", "depth") if key not in f]
            if missing:
                raise DataError(f"{path}: h5 file lacks {', '.join(missing)} (expected 'rgb' 3xHxW uint8 and "
                                "'depth' HxW metres, the sparse-to-dense format)")
            rgb = np.asarray(f["rgb"])
            depth = np.asarray(f["depth"], dtype=np.float32)
    except OSError as exc:
        raise DataError(f"{path}: cannot read h5 file ({exc})") from exc
    if rgb.ndim != 3 or rgb.shape[0] != 3 or depth.shape != rgb.shape[1:]:
        raise DataError(f"{path}: expected rgb 3xHxW and depth HxW of the same size, "
                        f"got rgb {rgb.shape} and depth {depth.shape}")
    return np.ascontiguousarray(rgb.transpose(1, 2, 0)).astype(np.uint8), depth


class NYUv2(FrameDataset):
    """NYUv2 frames as samples (``rgb``, ``sparse``, ``gt``, ``K``, ``name``).

    ``name`` is the h5 path relative to the split folder, without suffix (e.g. ``official/00001``).
    ``K`` overrides the Kinect intrinsics at the files' resolution (default :data:`NYU_K`).
    ``transform`` replaces the protocol pipeline (:func:`nyu_transform`); it should end with
    :class:`~lumde_depth.data.transforms.SparseFromGT`, which makes the ``sparse`` input.
    """

    def __init__(self, root: str | Path, split: str = "train", *, size: tuple[int, int] = (228, 304),
                 resize: tuple[int, int] = (240, 320), num_samples: int = 500, augment: bool | None = None,
                 transform: Transform | None = None, K: np.ndarray | None = None, seed: int = 0) -> None:
        if split not in SPLITS:
            raise DataError(f"NYUv2 split {split!r} unknown; use one of {', '.join(SPLITS)}")
        root = Path(root)
        if not (root / split).is_dir() and (root / "nyudepthv2" / split).is_dir():
            root = root / "nyudepthv2"
        self.folder = root / split
        self.files = list_files(self.folder, "**/*.h5", f"NYUv2 sparse-to-dense h5 files of the {split} split")
        train = split == "train"
        augment = train if augment is None else augment
        super().__init__(transform or nyu_transform(augment, size, resize, num_samples), seed,
                         deterministic=not train)
        self.K = torch.from_numpy(np.asarray(NYU_K if K is None else K, dtype=np.float32)[:3, :3].copy())

    def __len__(self) -> int:
        return len(self.files)

    def frame_files(self, index: int) -> list[Path]:
        """The file sample ``index`` is read from (for an up-front check, :mod:`lumde_depth.data.check`)."""
        return [self.files[index]]

    def load(self, index: int, rng: np.random.Generator) -> Sample:
        path = self.files[index]
        rgb, depth = read_nyu_h5(path)
        return {"rgb": rgb_tensor(rgb), "gt": depth_tensor(depth), "K": self.K.clone(),
                "name": path.relative_to(self.folder).with_suffix("").as_posix()}
