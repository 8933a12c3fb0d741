"""The real sample sets of ``../shared/data`` as :class:`~lumde_depth.data.rig_frame.RigFrame` records, and
the two evaluation protocols used on them.

Each ``*_frames(data)`` takes the shared data folder (the one holding ``kitti_object/``,
``ddad_testscene/``, ...) and yields frames in a fixed order; the benches
(``bench/real_accuracy.py``, ``bench/student_vs_classical.py``) and the tests read the sets through them.

- ``depth`` is the projected LiDAR for the LiDAR-only sets (KITTI object / raw, DDAD, PJLab), the
  ground truth for Argoverse (accumulated LiDAR, semi-dense) and the indoor RGB-D sets (dense sensor depth).
- Protocols: :func:`holdout` (sparse-to-sparse: a share of the LiDAR pixels held out as ground truth,
  the rest is the input) and :func:`sample_points` (NYUv2's input: 500 pixels of a dense depth).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from lumde_depth.data.depth_io import read_rgb, read_velodyne_bin
from lumde_depth.data.rgbd_formats import read_mm_depth, read_nyu_raw_depth, read_sun_depth, read_tum_depth
from lumde_depth.data.rig_frame import RigFrame

HOLDOUT = 0.2
"""Share of the LiDAR pixels held out as ground truth in the sparse-to-sparse protocol."""
PRIMESENSE_K = np.array([[525.0, 0, 319.5], [0, 525.0, 239.5], [0, 0, 1]])
"""Intrinsics of the PrimeSense / Kinect RGB-D sample frames (Redwood, NYU v2, SUN RGB-D, TUM)."""
PJLAB_ACCURATE = ("auto_calib_v2.0/data/ours/3", "manual_calib/data")
"""The OpenCalib frames whose extrinsic is the calibrated one (``ours/1`` and ``ours/2`` hold the
auto-calibration's starting guess, 10-14 px off: see :mod:`lumde_depth.data.opencalib`)."""


def holdout(depth: np.ndarray, rng: np.random.Generator, share: float = HOLDOUT) -> tuple[np.ndarray, np.ndarray]:
    """Split the depth's valid pixels: ``(input, ground truth)``, each pixel held out with probability ``share``."""
    held = (depth > 0) & (rng.random(depth.shape) < share)
    zero = np.float32(0.0)
    return np.where(held, zero, depth).astype(np.float32), np.where(held, depth, zero).astype(np.float32)


def sample_points(dense: np.ndarray, rng: np.random.Generator, count: int = 500) -> np.ndarray:
    """The NYUv2 protocol's input: ``count`` pixels of the dense depth, drawn uniformly among the valid ones."""
    valid = np.flatnonzero(dense > 1e-4)
    sparse = np.zeros(dense.shape, np.float32)
    pick = rng.choice(valid, size=min(count, valid.size), replace=False)
    sparse.flat[pick] = dense.flat[pick]
    return sparse


def kitti_object_frames(data: Path) -> Iterator[RigFrame]:
    """KITTI object frames (``kitti_object/training``): image_2 with its full HDL-64E scan projected."""
    from lumde_depth.geometry import project_points, read_kitti_object_calib

    root = Path(data) / "kitti_object" / "training"
    for image_path in sorted((root / "image_2").glob("*.png")):
        rgb = read_rgb(image_path)
        h, w = rgb.shape[:2]
        calib = read_kitti_object_calib(root / "calib" / f"{image_path.stem}.txt", image_size=(w, h))
        scan = read_velodyne_bin(root / "velodyne" / f"{image_path.stem}.bin")
        yield RigFrame(rgb=rgb, depth=project_points(scan, calib.T_cam_lidar, calib.P, w, h), K=calib.K,
                       scene=f"kitti_object/{image_path.stem}", camera="image_2",
                       name=f"kitti_object/{image_path.stem}", points=scan, T_cam_lidar=calib.T_cam_lidar)


def kitti_raw_frames(data: Path) -> Iterator[RigFrame]:
    """The KITTI raw drive of ``kitti_raw_tiny`` (every image_02 frame with its projected LiDAR)."""
    from lumde_depth.data.recording import kitti_raw_recording

    yield from kitti_raw_recording(Path(data) / "kitti_raw_tiny").frames()


def ddad_frames(data: Path, camera: str | None = None) -> Iterator[RigFrame]:
    """The DDAD test scenes (every camera, or one), LiDAR projected into each image."""
    from lumde_depth.data.ddad import ddad_frames as read

    yield from read(Path(data) / "ddad_testscene", cameras=[camera] if camera else None)


def pjlab_frames(data: Path) -> Iterator[RigFrame]:
    """The PJLab / OpenCalib frames with the calibrated extrinsic (:data:`PJLAB_ACCURATE`): raw (distorted)
    images with the LiDAR projected through the lens distortion."""
    from lumde_depth.data.opencalib import find_frames

    for frame in find_frames(Path(data) / "pjlab_lidar2camera"):
        if any(frame.name.endswith(name) for name in PJLAB_ACCURATE):
            yield frame.rig_frame()


def argoverse_frames(data: Path) -> Iterator[RigFrame]:
    """The Argoverse stereo frame: left image, LiDAR-accumulated ground-truth depth."""
    from lumde_depth.data.argoverse import argoverse_stereo_frames

    yield from argoverse_stereo_frames(Path(data) / "argoverse_stereo")


def redwood_frames(data: Path, count: int = 10) -> Iterator[RigFrame]:
    """``count`` frames spread over the Redwood living-room sequence, dense rendered depth."""
    root = Path(data) / "redwood_livingroom"
    images = sorted((root / "image").glob("*.jpg"))
    depths = sorted((root / "depth").glob("*.png"))
    for k in np.linspace(0, len(images) - 1, count).astype(int):
        yield RigFrame(rgb=read_rgb(images[k]), depth=read_mm_depth(depths[k]), K=PRIMESENSE_K,
                       scene="redwood_livingroom", camera="primesense", name=f"redwood/{images[k].stem}")


def rgbd_sensor_frames(data: Path) -> Iterator[RigFrame]:
    """One real frame each of NYU v2 (raw Kinect), SUN RGB-D and TUM RGB-D, dense sensor depth."""
    root = Path(data) / "rgbd_samples" / "other_formats"
    for name, color, depth, reader in (("NYU v2", "NYU_color.ppm", "NYU_depth.pgm", read_nyu_raw_depth),
                                       ("SUN RGB-D", "SUN_color.jpg", "SUN_depth.png", read_sun_depth),
                                       ("TUM", "TUM_color.png", "TUM_depth.png", read_tum_depth)):
        yield RigFrame(rgb=read_rgb(root / color), depth=reader(root / depth), K=PRIMESENSE_K, scene=name,
                       camera="rgbd", name=name)
