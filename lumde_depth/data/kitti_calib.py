"""Cached per-drive KITTI calibration, keyed by the camera folder names the datasets use."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from lumde_depth.data.depth_io import DataError
from lumde_depth.geometry import Calibration, read_kitti_raw_calib
from lumde_depth.geometry.calibration import RAW_CAM_TO_CAM, RAW_VELO_TO_CAM

CAMERAS = {"image_00": 0, "image_01": 1, "image_02": 2, "image_03": 3}


@lru_cache(maxsize=256)
def drive_calibration(date_dir: Path, camera: str) -> Calibration:
    """Calibration of ``camera`` (``image_02`` ...) from the raw calib files in ``date_dir``, read once
    per process (every frame of a date shares it)."""
    if camera not in CAMERAS:
        raise DataError(f"camera folder {camera!r} unknown; use one of {', '.join(CAMERAS)}")
    return read_kitti_raw_calib(date_dir, CAMERAS[camera])


def calib_files(date_dir: Path) -> list[Path]:
    """The calibration files :func:`drive_calibration` reads from ``date_dir``."""
    return [date_dir / RAW_CAM_TO_CAM, date_dir / RAW_VELO_TO_CAM]


def camera_matrix(date_dir: Path, camera: str, image: Path, shape: tuple[int, ...]) -> np.ndarray:
    """3x3 float32 K of ``camera`` for ``image`` (of array ``shape``), after checking that the image
    has the size the calibration states (a mismatch means the wrong calibration or a resized image)."""
    calib = drive_calibration(date_dir, camera)
    if calib.width is not None and (calib.height, calib.width) != tuple(shape[:2]):
        raise DataError(f"size mismatch: {image} is {shape[1]}x{shape[0]} but the calibration in {date_dir} "
                        f"states {calib.width}x{calib.height} for {camera}; use the calibration of this drive's date")
    return calib.K.astype(np.float32)
