"""Argoverse 1.1 stereo: rectified left images with LiDAR-accumulated ground-truth disparity.

Layout (the argoverse-api stereo layout, e.g. ``../shared/data/argoverse_stereo``)::

    rectified_stereo_images_v1.1/<split>/<log>/stereo_front_left_rect/stereo_front_left_rect_<n>.jpg
    rectified_stereo_images_v1.1/<split>/<log>/vehicle_calibration_stereo_info.json
    disparity_maps_v1.1/<split>/<log>/stereo_front_left_rect_disparity/disparity_<n>.png

The disparity PNG is uint16, ``disparity_px = value / 256``, 0 = no data; it was made by
accumulating LiDAR sweeps, so it is semi-dense (~0.7 % of the pixels) ground truth, out to ~190 m.
Depth = ``fx * baseline / disparity`` with the rectified camera's ``fx`` (from the calibration json)
and the stereo baseline :data:`STEREO_BASELINE` (Argoverse documentation).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from lumde_depth.data.depth_io import DataError, _require_file, read_rgb
from lumde_depth.data.rig_frame import RigFrame

STEREO_BASELINE = 0.2986
"""Metres between the rectified stereo_front_left and _right cameras (Argoverse 1.1 documentation)."""
LEFT_RECT = "image_raw_stereo_front_left_rect"


def read_disparity_png(path: str | Path) -> np.ndarray:
    """An Argoverse / KITTI-stereo disparity PNG as ``(H, W)`` float32 pixels (value / 256; 0 = none)."""
    path = Path(path)
    _require_file(path)
    raw = np.asarray(Image.open(path))
    if raw.ndim != 2 or raw.dtype not in (np.uint16, np.int32):
        raise DataError(f"{path}: expected a one-channel 16-bit disparity PNG (value / 256 = pixels), "
                        f"got {raw.dtype} {raw.shape}")
    return raw.astype(np.float32) / 256.0


def rectified_left_K(calibration_json: str | Path) -> np.ndarray:
    """3x3 intrinsics of the rectified left stereo camera from ``vehicle_calibration_stereo_info.json``."""
    path = Path(calibration_json)
    _require_file(path)
    cameras = {c["key"]: c["value"] for c in json.loads(path.read_text()).get("camera_data_", [])}
    if LEFT_RECT not in cameras:
        raise DataError(f"{path}: no '{LEFT_RECT}' camera in camera_data_ (found {sorted(cameras)})")
    c = cameras[LEFT_RECT]
    return np.array([[c["focal_length_x_px_"], c.get("skew_", 0.0), c["focal_center_x_px_"]],
                     [0.0, c["focal_length_y_px_"], c["focal_center_y_px_"]], [0.0, 0.0, 1.0]])


def disparity_to_depth(disparity: np.ndarray, fx: float, baseline: float = STEREO_BASELINE) -> np.ndarray:
    """Depth ``(H, W)`` float32 metres from disparity pixels (0 where the disparity is 0)."""
    valid = disparity > 0
    return np.where(valid, fx * baseline / np.where(valid, disparity, 1.0), 0.0).astype(np.float32)


def argoverse_stereo_frames(root: str | Path, split: str = "*") -> Iterator[RigFrame]:
    """Every left image with ground truth under ``root``: ``depth`` is the ground-truth depth
    (semi-dense accumulated LiDAR, metres, 0 = none); no scan (``points`` is None)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found (expected an Argoverse stereo dataset)")
    disparities = sorted(root.rglob(f"disparity_maps_v1.1/{split}/*/stereo_front_left_rect_disparity/disparity_*.png"))
    if not disparities:
        raise DataError(f"{root}: no disparity_maps_v1.1/<split>/<log>/stereo_front_left_rect_disparity/"
                        "disparity_*.png below it")
    for disparity_path in disparities:
        log_dir = disparity_path.parents[1]
        index = disparity_path.stem.split("_")[-1]
        images = disparity_path.parents[3].parent / "rectified_stereo_images_v1.1" / log_dir.parent.name / log_dir.name
        K = rectified_left_K(images / "vehicle_calibration_stereo_info.json")
        rgb = read_rgb(images / "stereo_front_left_rect" / f"stereo_front_left_rect_{index}.jpg")
        depth = disparity_to_depth(read_disparity_png(disparity_path), K[0, 0])
        if depth.shape != rgb.shape[:2]:
            raise DataError(f"{disparity_path}: disparity is {depth.shape[::-1]} but the left image is "
                            f"{rgb.shape[1::-1]}")
        yield RigFrame(rgb=rgb, depth=depth, K=K, scene=log_dir.name, camera="stereo_front_left_rect",
                       name=f"argoverse/{log_dir.name}/{index}")
