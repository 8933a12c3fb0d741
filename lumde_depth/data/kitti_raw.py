"""KITTI raw drives as frame triplets for self-supervised (monocular) training, with LiDAR depth.

Layout (as the KITTI raw archives unpack, and what ``lumde synth --layout kitti_raw`` writes)::

    <root>/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt
    <root>/<date>/<drive>/image_0{2,3}/data/<frame>.png, image_0{2,3}/timestamps.txt
    <root>/<date>/<drive>/velodyne_points/data/<frame>.bin     (float32 x, y, z, intensity)
    <root>/<date>/<drive>/proj_depth/velodyne/image_0{2,3}/<frame>.npz   (optional, key velodyne_depth)

The sparse depth of a frame is its scan projected with the drive calibration
(:func:`lumde_depth.geometry.project_points`), or the precomputed projection (``.npz``, as in
PackNet-SfM's KITTI_tiny) when there is no scan. Triplets ``(t - stride, t, t + stride)`` give
``rgb_prev`` / ``rgb_next``; frames without both neighbours are not used as centre frames.

Splits: ``all`` (every drive under ``root``); a split file (a path, or ``<root>/<split>.txt`` /
``<root>/splits/<split>.txt``) whose lines are either ``<date>/<drive> <frame> [l|r]`` (Monodepth2)
or image paths ``<date>/<drive>/image_0X/data/<frame>.png`` (KITTI_tiny); or a sub-folder
``<root>/<split>/`` that holds ``<date>`` folders.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lumde_depth.data.depth_io import DataError, read_rgb, read_timestamps_ns, read_velodyne_bin
from lumde_depth.data.kitti_calib import calib_files, camera_matrix, drive_calibration
from lumde_depth.data.kitti_dc import kitti_transform
from lumde_depth.data.sample import FrameDataset, check_same_size, depth_tensor, list_files, require_dir, rgb_tensor
from lumde_depth.data.transforms import Sample, Transform
from lumde_depth.geometry import project_points

SPARSE_SOURCES = ("auto", "bin", "npz")
_DRIVE = re.compile(r"^\d{4}_\d{2}_\d{2}_drive_\d{4}_(sync|extract)$")
_SIDES = {"l": "image_02", "r": "image_03"}


@dataclass(frozen=True)
class _Frame:
    drive: Path
    camera: str
    index: int
    width: int  # digits of the file name

    def stem(self, offset: int = 0) -> str:
        return f"{self.index + offset:0{self.width}d}"

    @property
    def name(self) -> str:
        return f"{self.drive.name}/{self.camera}/{self.stem()}"

    def image(self, offset: int = 0) -> Path:
        return self.drive / self.camera / "data" / f"{self.stem(offset)}.png"


def read_timestamps(path: Path) -> np.ndarray:
    """KITTI ``timestamps.txt`` -> float64 seconds since the Unix epoch (NaN where a line is empty);
    see :func:`~lumde_depth.data.depth_io.read_timestamps_ns` for exact nanoseconds."""
    ns = read_timestamps_ns(path)
    return np.where(ns < 0, np.nan, ns // 1_000_000_000 + (ns % 1_000_000_000) * 1e-9)


def _drives_under(folder: Path) -> list[Path]:
    return sorted(d for date in folder.iterdir() if date.is_dir()
                  for d in date.iterdir() if d.is_dir() and _DRIVE.match(d.name))


def _split_entries(root: Path, split: str) -> list[tuple[Path, str, int]] | list[Path]:
    """Either ``(drive, camera, index)`` entries from a split file, or the drive folders to use."""
    if split == "all":
        return _drives_under(require_dir(root, "a KITTI raw root holding <date>/<drive> folders"))
    candidates = [Path(split), root / f"{split}.txt", root / "splits" / f"{split}.txt"]
    split_file = next((c for c in candidates if c.is_file()), None)
    if split_file is None:
        if (root / split).is_dir():
            return _drives_under(root / split)
        raise DataError(f"KITTI raw split {split!r} not found: no split file ({', '.join(map(str, candidates))}) "
                        f"and no folder {root / split}; use split='all' for every drive under {root}")
    entries = []
    for number, line in enumerate(split_file.read_text().splitlines(), 1):
        words = line.split()
        if not words:
            continue
        if words[0].endswith(".png"):
            image = Path(words[0])
            entries.append((root / image.parents[2], image.parts[-3], int(image.stem)))
        elif len(words) >= 2 and words[1].lstrip("-").isdigit():
            camera = _SIDES.get(words[2] if len(words) > 2 else "l")
            if camera is None:
                raise DataError(f"{split_file}:{number}: side must be 'l' or 'r', got {words[2]!r}")
            entries.append((root / words[0], camera, int(words[1])))
        else:
            raise DataError(f"{split_file}:{number}: expected '<date>/<drive> <frame> [l|r]' or an image path, "
                            f"got {line!r}")
    if not entries:
        raise DataError(f"{split_file}: split file lists no frames")
    return entries


class KittiRaw(FrameDataset):
    """KITTI raw frames (``rgb``, ``sparse``, ``K``, ``name``, ``stamp``; with ``triplets`` also
    ``rgb_prev`` / ``rgb_next``). No ``gt``: raw drives have no dense ground truth.

    ``cameras``: which colour cameras to use when the split does not say (default ``image_02``).
    ``sparse_source``: ``bin`` (project the scan), ``npz`` (precomputed projection) or ``auto``
    (the scan when present, else the npz). ``size`` / ``crop`` / ``augment`` / ``transform`` as in
    :class:`lumde_depth.data.kitti_dc.KittiDepthCompletion` (default: full frame, no crop).
    """

    def __init__(self, root: str | Path, split: str = "all", *, cameras: tuple[str, ...] = ("image_02",),
                 triplets: bool = True, stride: int = 1, sparse_source: str = "auto",
                 max_depth: float = float("inf"), size: tuple[int, int] | None = None,
                 crop: tuple[int, int] | None = None, augment: bool | None = None,
                 transform: Transform | None = None, seed: int = 0) -> None:
        if sparse_source not in SPARSE_SOURCES:
            raise DataError(f"sparse_source {sparse_source!r} unknown; use one of {', '.join(SPARSE_SOURCES)}")
        if stride < 1:
            raise DataError(f"stride must be >= 1, got {stride}")
        self.root = Path(root)
        self.triplets, self.stride = triplets, stride
        self.sparse_source, self.max_depth = sparse_source, max_depth
        entries = _split_entries(self.root, split)
        offsets = (-stride, stride) if triplets else ()
        self.frames = (self._from_entries(entries, offsets) if entries and isinstance(entries[0], tuple)
                       else self._from_drives(entries, cameras, offsets))
        if not self.frames:
            raise DataError(f"{self.root}: no usable frames in split {split!r}"
                            + (f" (triplets need frames t-{stride} and t+{stride})" if triplets else ""))
        self._stamps: dict[Path, np.ndarray] = {}
        train = split == "train"
        augment = train if augment is None else augment
        super().__init__(transform or kitti_transform(augment, size, crop), seed, deterministic=not augment)

    @staticmethod
    def _from_drives(drives: list[Path], cameras: tuple[str, ...], offsets: tuple[int, ...]) -> list[_Frame]:
        frames = []
        for drive in drives:
            for camera in cameras:
                images = list_files(drive / camera / "data", "*.png", f"the {camera} images of the drive")
                indices = {int(p.stem) for p in images}
                width = len(images[0].stem)
                frames += [_Frame(drive, camera, i, width) for i in sorted(indices)
                           if all(i + o in indices for o in offsets)]
        return frames

    @staticmethod
    def _from_entries(entries: list[tuple[Path, str, int]], offsets: tuple[int, ...]) -> list[_Frame]:
        frames = []
        for drive, camera, index in entries:
            frame = _Frame(drive, camera, index, 10)
            for offset in (0, *offsets):
                if not frame.image(offset).is_file():
                    raise DataError(f"{frame.image(offset)}: image listed by the split (or needed as a neighbour of "
                                    f"frame {index}) does not exist")
            frames.append(frame)
        return frames

    def __len__(self) -> int:
        return len(self.frames)

    def _stamp(self, frame: _Frame) -> float:
        path = frame.drive / frame.camera / "timestamps.txt"
        if path not in self._stamps:
            self._stamps[path] = read_timestamps(path) if path.is_file() else np.zeros(0)
        stamps = self._stamps[path]
        return float(stamps[frame.index]) if frame.index < stamps.size else float("nan")

    def frame_files(self, index: int) -> list[Path]:
        """The files sample ``index`` is read from (for an up-front check, :mod:`lumde_depth.data.check`)."""
        frame = self.frames[index]
        offsets = (0, -self.stride, self.stride) if self.triplets else (0,)
        scan, projected = self._lidar_files(frame)
        lidar = scan if self.sparse_source == "bin" or (self.sparse_source == "auto" and scan.is_file()) else projected
        return [*(frame.image(o) for o in offsets), lidar, *calib_files(frame.drive.parent)]

    @staticmethod
    def _lidar_files(frame: _Frame) -> tuple[Path, Path]:
        """The frame's scan (``.bin``) and precomputed projection (``.npz``) paths."""
        return (frame.drive / "velodyne_points" / "data" / f"{frame.stem()}.bin",
                frame.drive / "proj_depth" / "velodyne" / frame.camera / f"{frame.stem()}.npz")

    def sparse_depth(self, frame: _Frame, width: int, height: int) -> np.ndarray:
        """The frame's LiDAR depth in its camera image, ``(height, width)`` float32 metres."""
        scan, projected = self._lidar_files(frame)
        if self.sparse_source == "bin" or (self.sparse_source == "auto" and scan.is_file()):
            if not scan.is_file():
                raise DataError(f"{scan}: LiDAR scan not found (sparse_source='bin')")
            calib = drive_calibration(frame.drive.parent, frame.camera)
            return project_points(read_velodyne_bin(scan), calib.T_cam_lidar, calib.K, width, height,
                                  max_depth=self.max_depth)
        if not projected.is_file():
            raise DataError(f"no LiDAR data for {frame.name}: neither {scan} nor {projected} exists")
        with np.load(projected) as data:
            if "velodyne_depth" not in data:
                raise DataError(f"{projected}: npz lacks the key 'velodyne_depth' (has {', '.join(data.files)})")
            depth = data["velodyne_depth"].astype(np.float32)
        check_same_size(frame.image(), (height, width), projected, depth.shape)
        return np.where(depth <= self.max_depth, depth, np.float32(0.0))

    def load(self, index: int, rng: np.random.Generator) -> Sample:
        frame = self.frames[index]
        rgb = read_rgb(frame.image())
        height, width = rgb.shape[:2]
        K = camera_matrix(frame.drive.parent, frame.camera, frame.image(), rgb.shape)
        sample = {"rgb": rgb_tensor(rgb), "sparse": depth_tensor(self.sparse_depth(frame, width, height)),
                  "K": torch.from_numpy(K), "name": frame.name,
                  "stamp": torch.tensor(self._stamp(frame), dtype=torch.float64)}
        if self.triplets:
            for key, offset in (("rgb_prev", -self.stride), ("rgb_next", self.stride)):
                other = read_rgb(frame.image(offset))
                check_same_size(frame.image(), rgb.shape, frame.image(offset), other.shape)
                sample[key] = rgb_tensor(other)
        return sample
