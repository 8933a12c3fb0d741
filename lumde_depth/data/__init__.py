"""Datasets (KITTI depth completion, KITTI raw sequences, NYUv2), readers of other real rigs (DDAD,
Argoverse stereo, OpenCalib / PJLab raw distorted frames: numpy :class:`RigFrame` records), ``.pcd``
clouds, depth file I/O and transforms.

Every dataset returns the same sample dict: ``rgb`` 3xHxW float in [0, 1], ``sparse`` 1xHxW metres
(0 = none), ``gt`` 1xHxW metres (0 = invalid; absent without ground truth), ``K`` 3x3 intrinsics of
the returned image, ``name`` a unique frame id; sequences add ``rgb_prev`` / ``rgb_next``.

The names below are imported on first use, so that ``lumde_depth.data.depth_io`` (numpy and
Pillow only; used by the synthetic generator's worker processes and the bag tools) does not pull
in torch and h5py.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DataError": "depth_io", "read_depth_png": "depth_io", "write_depth_png": "depth_io", "read_rgb": "depth_io",
    "KittiDepthCompletion": "kitti_dc", "KittiDepthSelection": "kitti_dc", "KittiRaw": "kitti_raw",
    "NYUv2": "nyuv2", "KINDS": "registry", "build_dataset": "registry",
    "RigFrame": "rig_frame", "DDADScene": "ddad", "ddad_scenes": "ddad", "ddad_frames": "ddad",
    "argoverse_stereo_frames": "argoverse", "read_pcd": "pcd", "pcd_xyz": "pcd", "OpenCalibFrame": "opencalib",
    "opencalib_frames": "opencalib", "Recording": "recording", "open_recording": "recording",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
