"""KITTI depth completion: the official train / val layout and the selected (cropped) sets.

Official layout (as the KITTI archives unpack)::

    <root>/data_depth_velodyne/{train,val}/<drive>/proj_depth/velodyne_raw/image_0{2,3}/<frame>.png
    <root>/data_depth_annotated/{train,val}/<drive>/proj_depth/groundtruth/image_0{2,3}/<frame>.png
    <raw_root>/<date>/<drive>/image_0{2,3}/data/<frame>.png      (KITTI raw, rectified colour)
    <raw_root>/<date>/calib_cam_to_cam.txt                        (P_rect_02 / P_rect_03 give K)

Flattened layout (what ``lumde synth --layout kitti_dc`` writes, and many repositories use): one
root holding ``{train,val}/<drive>/proj_depth/{velodyne_raw,groundtruth}/image_02/`` and the raw
drives under ``<root>/raw/`` (where ``lumde synth`` puts them) or next to the splits. Without
``raw_root=`` only these two places inside the root are searched, never a folder beside it: another
folder may hold different drives of the same name (synthetic drive names always repeat). Each root
can also be given explicitly (``velodyne_root=``, ``groundtruth_root=``, ``raw_root=``);
:attr:`KittiDepthCompletion.sources` and :meth:`~KittiDepthCompletion.describe` say which folders
were read.

Selected sets: ``depth_selection/val_selection_cropped/{image,velodyne_raw,groundtruth_depth,intrinsics}``
(1216x352 crops, K in a 9-number txt per frame) and ``test_depth_completion_anonymous`` (no ground
truth).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from lumde_depth.data.depth_io import DataError, read_depth_png, read_intrinsics_txt, read_rgb
from lumde_depth.data.kitti_calib import calib_files, camera_matrix
from lumde_depth.data.sample import FrameDataset, check_same_size, depth_tensor, list_files, require_dir, rgb_tensor
from lumde_depth.data.transforms import ColorJitter, Compose, Crop, HFlip, Resize, Sample, SparseAugment, Transform

KITTI_CROP = (352, 1216)
"""(height, width) of the KITTI depth completion benchmark crops (bottom rows, centred columns)."""
SPLITS = ("train", "val")
SELECTION_SPLITS = {"val_selection_cropped": True, "test_depth_completion_anonymous": False}
"""Selected-set folder -> whether it has ground truth."""


def kitti_transform(train: bool, size: tuple[int, int] | None = KITTI_CROP,
                    crop: tuple[int, int] | None = None, resize: tuple[int, int] | None = None,
                    sparse_aug: dict[str, Any] | None = None) -> Transform:
    """Bottom crop to ``size`` (None: keep the full frame), then a resize of the whole frame to
    ``resize`` (h, w), as ``DepthCompleter(fit="stretch")`` stretches any camera's image to the network's input (so
    training on other rigs' images sees what the node feeds the network); for training also a random
    ``crop``, a horizontal flip, colour jitter and, with ``sparse_aug`` (keywords of
    :class:`~lumde_depth.data.transforms.SparseAugment`), density / pattern augmentation of the LiDAR.
    A ``crop`` without ``train`` would be ignored, so it is an error."""
    if crop and not train:
        raise DataError(f"crop={list(crop)} has no effect: it is the random training crop, drawn only with "
                        "augmentation, which is off here (augment=false, or a split other than 'train'); remove "
                        "crop, or give size=[H, W] for a fixed bottom crop")
    steps: list[Transform] = [Crop(size[0], size[1], "bottom")] if size else []
    if resize:
        steps.append(Resize(resize[0], resize[1], dense_gt=False))
    if train:
        if crop:
            steps.append(Crop(crop[0], crop[1], "random"))
        steps += [HFlip(0.5), ColorJitter(0.2, 0.2, 0.2)]
        if sparse_aug is not None:
            try:
                steps.append(SparseAugment(**sparse_aug))
            except TypeError as exc:
                raise DataError(f"sparse_aug: {exc}; valid keys: "
                                f"{', '.join(SparseAugment.__dataclass_fields__)}") from None
    return Compose(steps)


@dataclass(frozen=True)
class _Frame:
    name: str
    rgb: Path
    sparse: Path
    gt: Path | None
    calib: Path  # the raw date folder (calibration files), or the selected set's intrinsics txt


def _split_dir(explicit: Path | None, root: Path, official: str, split: str) -> Path | None:
    """``<explicit>/<split>``, else ``<root>/<official>/<split>``, else ``<root>/<split>`` (first that exists)."""
    candidates = [explicit / split] if explicit is not None else [root / official / split, root / split]
    return next((c for c in candidates if c.is_dir()), None)


def _raw_candidates(root: Path, raw_root: Path | None) -> list[Path]:
    """Where the raw drives are looked for: ``raw_root`` alone, else only inside ``root``."""
    if raw_root is not None:
        return [raw_root]
    return [root / "raw", root]


class KittiDepthCompletion(FrameDataset):
    """KITTI depth completion train / val frames (``rgb``, ``sparse``, ``gt``, ``K``, ``name``).

    ``name`` is ``<drive>/<camera>/<frame>``. ``cameras`` limits the cameras (default: all of
    ``image_02`` / ``image_03`` present). Ground truth is loaded when any drive has a
    ``proj_depth/groundtruth`` folder; then every frame must have one. ``size`` is the bottom crop
    (the benchmark's 352x1216; None keeps the full frame), ``resize`` a resize of the frame after it,
    ``crop`` an extra random training crop, ``sparse_aug`` the LiDAR density / pattern augmentation
    (see :func:`kitti_transform`); ``transform`` replaces :func:`kitti_transform` entirely.
    """

    def __init__(self, root: str | Path, split: str = "train", *, raw_root: str | Path | None = None,
                 velodyne_root: str | Path | None = None, groundtruth_root: str | Path | None = None,
                 cameras: tuple[str, ...] = ("image_02", "image_03"), size: tuple[int, int] | None = KITTI_CROP,
                 crop: tuple[int, int] | None = None, resize: tuple[int, int] | None = None,
                 sparse_aug: dict[str, Any] | None = None, augment: bool | None = None,
                 transform: Transform | None = None, seed: int = 0) -> None:
        if split not in SPLITS:
            raise DataError(f"KITTI depth completion split {split!r} unknown; use one of {', '.join(SPLITS)} "
                            f"(or {', '.join(SELECTION_SPLITS)} for the selected sets)")
        root = Path(root)
        velodyne = _split_dir(None if velodyne_root is None else Path(velodyne_root), root,
                              "data_depth_velodyne", split)
        if velodyne is None:
            raise DataError(f"{root}: no {split} split found (expected {root}/data_depth_velodyne/{split} or "
                            f"{root}/{split}; or pass velodyne_root=)")
        groundtruth = _split_dir(None if groundtruth_root is None else Path(groundtruth_root), root,
                                 "data_depth_annotated", split)
        raws = _raw_candidates(root, None if raw_root is None else Path(raw_root))
        self.frames = self._index(velodyne, groundtruth, raws, cameras)
        gt = {str(f.gt.parents[4]) for f in self.frames if f.gt is not None}
        #: The folders read: sparse depth, ground truth (None without) and raw images + calibration.
        self.sources: dict[str, Any] = {
            "sparse depth": str(velodyne), "ground truth": ", ".join(sorted(gt)) or None,
            "images and calibration": ", ".join(sorted({str(f.calib.parent) for f in self.frames})),
            "raw_root given": raw_root is not None}
        train = split == "train"
        augment = train if augment is None else augment
        super().__init__(transform or kitti_transform(augment, size, crop, resize, sparse_aug), seed,
                         deterministic=not augment)

    @staticmethod
    def _index(velodyne: Path, groundtruth: Path | None, raws: list[Path], cameras: tuple[str, ...]) -> list[_Frame]:
        frames: list[_Frame] = []
        drives = sorted(p for p in velodyne.iterdir() if p.is_dir())
        if not drives:
            raise DataError(f"{velodyne}: no drive folders (expected <drive>/proj_depth/velodyne_raw/image_02/*.png)")
        if groundtruth is not None and not any((groundtruth / d.name / "proj_depth" / "groundtruth").is_dir()
                                               for d in drives):
            groundtruth = None  # a flattened layout without ground truth (e.g. the test drives)
        for drive in drives:
            date = drive.name[:10]
            raw = next((r for r in raws if (r / date / drive.name).is_dir()), None)
            if raw is None:
                raise DataError(f"raw images of {drive.name} not found: looked for {date}/{drive.name} in "
                                f"{', '.join(map(str, raws))}; pass raw_root= (the folder holding <date>/<drive>; in an "
                                "experiment config data.train_kwargs.raw_root and data.val_kwargs.raw_root), or "
                                "link that folder as <root>/raw")
            proj = drive / "proj_depth" / "velodyne_raw"
            present = [c for c in cameras if (proj / c).is_dir()]
            if not present:
                raise DataError(f"{proj}: none of the camera folders {', '.join(cameras)} exists")
            for camera in present:
                gt_dir = None
                if groundtruth is not None:
                    gt_dir = require_dir(groundtruth / drive.name / "proj_depth" / "groundtruth" / camera,
                                         "the ground truth of the velodyne_raw frames")
                    gt_names = {p.name for p in gt_dir.glob("*.png")}
                for sparse in list_files(proj / camera, "*.png", "sparse depth PNGs"):
                    if gt_dir is not None and sparse.name not in gt_names:
                        raise DataError(f"{gt_dir / sparse.name}: ground truth missing for {sparse}")
                    frames.append(_Frame(
                        name=f"{drive.name}/{camera}/{sparse.stem}",
                        rgb=raw / date / drive.name / camera / "data" / sparse.name, sparse=sparse,
                        gt=None if gt_dir is None else gt_dir / sparse.name,
                        calib=raw / date))
        return frames

    def __len__(self) -> int:
        return len(self.frames)

    def describe(self) -> str:
        """One line naming every folder the frames come from."""
        src = self.sources
        raw = src["images and calibration"]
        how = "" if src["raw_root given"] else " (found inside the root; give raw_root= to read other drives)"
        return (f"{len(self)} frames; sparse depth from {src['sparse depth']}, ground truth from "
                f"{src['ground truth'] or 'nowhere (none found)'}, images and calibration from {raw}{how}")

    def frame_files(self, index: int) -> list[Path]:
        """The files sample ``index`` is read from (for an up-front check, :mod:`lumde_depth.data.check`)."""
        return _frame_files(self.frames[index], calib_files(self.frames[index].calib))

    def load(self, index: int, rng: np.random.Generator) -> Sample:
        frame = self.frames[index]
        camera = frame.name.split("/")[1]
        return _load_frame(frame, lambda shape: camera_matrix(frame.calib, camera, frame.rgb, shape))


def _frame_files(frame: _Frame, calib: list[Path]) -> list[Path]:
    return [frame.rgb, frame.sparse, *([frame.gt] if frame.gt is not None else []), *calib]


def _load_frame(frame: _Frame, intrinsics: Callable[[tuple[int, ...]], np.ndarray]) -> Sample:
    """The frame's sample; ``intrinsics(image shape)`` gives its 3x3 K."""
    rgb = read_rgb(frame.rgb)
    sparse = read_depth_png(frame.sparse)
    check_same_size(frame.rgb, rgb.shape, frame.sparse, sparse.shape)
    sample = {"rgb": rgb_tensor(rgb), "sparse": depth_tensor(sparse), "K": torch.from_numpy(intrinsics(rgb.shape)),
              "name": frame.name}
    if frame.gt is not None:
        gt = read_depth_png(frame.gt)
        check_same_size(frame.rgb, rgb.shape, frame.gt, gt.shape)
        sample["gt"] = depth_tensor(gt)
    return sample


class KittiDepthSelection(FrameDataset):
    """The selected KITTI depth completion sets: ``val_selection_cropped`` (with ground truth) and
    ``test_depth_completion_anonymous`` (without), already cropped to 1216x352, K per frame.

    ``root`` may be the set folder itself, its parent (``depth_selection``) or the grandparent.
    ``name`` is the file stem of the ``image`` file. No transform by default (evaluation sets).
    """

    def __init__(self, root: str | Path, split: str = "val_selection_cropped", *,
                 transform: Transform | None = None, seed: int = 0) -> None:
        if split not in SELECTION_SPLITS:
            raise DataError(f"KITTI selected set {split!r} unknown; use one of {', '.join(SELECTION_SPLITS)}")
        root = Path(root)
        folder = next((c for c in (root, root / split, root / "depth_selection" / split)
                       if c.name == split and c.is_dir()), root / split)
        with_gt = SELECTION_SPLITS[split]
        sparse_files = list_files(folder / "velodyne_raw", "*.png", "sparse depth PNGs of the selected set")
        self.frames: list[_Frame] = []
        for sparse in sparse_files:
            image = folder / "image" / sparse.name.replace("_velodyne_raw_", "_image_")
            gt = folder / "groundtruth_depth" / sparse.name.replace("_velodyne_raw_", "_groundtruth_depth_")
            self.frames.append(_Frame(name=image.stem, rgb=image, sparse=sparse, gt=gt if with_gt else None,
                                      calib=folder / "intrinsics" / f"{image.stem}.txt"))
        super().__init__(transform, seed, deterministic=True)

    def __len__(self) -> int:
        return len(self.frames)

    def frame_files(self, index: int) -> list[Path]:
        """The files sample ``index`` is read from (for an up-front check, :mod:`lumde_depth.data.check`)."""
        return _frame_files(self.frames[index], [self.frames[index].calib])

    def load(self, index: int, rng: np.random.Generator) -> Sample:
        frame = self.frames[index]
        return _load_frame(frame, lambda shape: read_intrinsics_txt(frame.calib))
