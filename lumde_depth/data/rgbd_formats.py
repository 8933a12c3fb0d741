"""Depth maps of the common indoor RGB-D datasets, as ``(H, W)`` float32 metres (0 = no data).

Each dataset stores depth its own way; these readers decode the formats of the sample frames in
``../shared/data/rgbd_samples`` (NYU Depth v2 raw, SUN RGB-D, TUM RGB-D, Redwood / Open3D):

- ``mm``: uint16 PNG in millimetres (Redwood, Open3D's RGB-D test frames);
- ``tum``: uint16 PNG, value / 5000 = metres;
- ``sun``: uint16 PNG whose bits are rotated: millimetres = ``(v >> 3) | (v << 13)`` (16 bits);
- ``nyu_raw``: NYU v2 *raw* Kinect disparity in a PGM whose header says 16-bit but whose samples
  are little-endian (the PGM standard is big-endian, so image libraries misread it);
  metres = 351.3 / (1092.5 - raw), 2047 = no data.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from lumde_depth.data.depth_io import DataError, _require_file

NYU_INVALID = 2047


def _uint16_png(path: Path) -> np.ndarray:
    _require_file(path)
    raw = np.asarray(Image.open(path))
    if raw.ndim != 2 or raw.dtype not in (np.uint16, np.int32):
        raise DataError(f"{path}: expected a one-channel 16-bit depth PNG, got {raw.dtype} {raw.shape}")
    return raw.astype(np.uint16)


def read_mm_depth(path: str | Path) -> np.ndarray:
    """uint16 millimetres (Redwood, Open3D)."""
    return _uint16_png(Path(path)).astype(np.float32) / 1000.0


def read_tum_depth(path: str | Path) -> np.ndarray:
    """TUM RGB-D: uint16 / 5000."""
    return _uint16_png(Path(path)).astype(np.float32) / 5000.0


def read_sun_depth(path: str | Path) -> np.ndarray:
    """SUN RGB-D: uint16 rotated right by 3 bits, millimetres."""
    v = _uint16_png(Path(path))
    return ((v >> 3) | (v << 13)).astype(np.float32) / 1000.0


def read_nyu_raw_depth(path: str | Path) -> np.ndarray:
    """NYU Depth v2 raw Kinect disparity (little-endian 16-bit PGM) converted to metres."""
    path = Path(path)
    _require_file(path)
    data = path.read_bytes()
    fields = data.split(maxsplit=4)
    if len(fields) < 5 or fields[0] != b"P5":
        raise DataError(f"{path}: not a binary PGM (P5) file")
    width, height, maxval = (int(f) for f in fields[1:4])
    pixels = fields[4]
    if maxval < 256 or len(pixels) != 2 * width * height:
        raise DataError(f"{path}: expected {2 * width * height} bytes of 16-bit samples after the header, "
                        f"got {len(pixels)} (maxval {maxval}); the file is truncated or not NYU raw depth")
    raw = np.frombuffer(pixels, dtype="<u2").reshape(height, width).astype(np.float32)
    valid = (raw < NYU_INVALID) & (raw < 1092.5)
    return np.where(valid, 351.3 / np.maximum(1092.5 - raw, 1e-3), 0.0).astype(np.float32)


READERS: dict[str, Callable[[str | Path], np.ndarray]] = {
    "mm": read_mm_depth, "tum": read_tum_depth, "sun": read_sun_depth, "nyu_raw": read_nyu_raw_depth}
