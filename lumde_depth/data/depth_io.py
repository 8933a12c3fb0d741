"""Image, depth and timestamp file I/O in the KITTI conventions.

Depth PNGs are 16-bit unsigned, one channel, value = metres x 256, 0 = no data (KITTI depth
completion devkit). Everything returned here is numpy; datasets turn it into tensors.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

DEPTH_SCALE = 256.0
"""PNG units per metre."""
MAX_DEPTH_PNG = 65535 / DEPTH_SCALE
"""Largest depth (metres) a depth PNG can hold; larger values are clipped to it."""


class DataError(ValueError):
    """A data file or folder is missing or malformed; the message names the path and the fix."""


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise DataError(f"{path}: file not found (check the dataset root and layout)")


def read_depth_png(path: str | Path) -> np.ndarray:
    """Read a KITTI depth PNG as ``(H, W)`` float32 metres, 0 where there is no data.

    Raises :class:`DataError` when the file is missing or is not a single-channel 16-bit PNG (an
    8-bit PNG has lost the depth precision: re-export it as uint16 metres x 256).
    """
    path = Path(path)
    _require_file(path)
    try:
        with Image.open(path) as img:
            if img.mode not in ("I;16", "I;16B", "I"):
                raise DataError(f"{path}: depth PNG must be 16-bit single channel (uint16 metres x 256), "
                                f"got Pillow mode {img.mode!r}; write it with write_depth_png")
            raw = np.asarray(img)
    except (OSError, SyntaxError) as exc:  # Pillow: truncated or damaged data (SyntaxError: "broken PNG file")
        raise DataError(f"{path}: cannot read the depth PNG, the file is damaged ({exc}); restore or regenerate "
                        "it") from None
    if raw.dtype == np.int32 and (raw.min(initial=0) < 0 or raw.max(initial=0) > 65535):
        raise DataError(f"{path}: depth PNG values out of the uint16 range")
    return (raw.astype(np.float32) / np.float32(DEPTH_SCALE)).astype(np.float32)


def write_depth_png(path: str | Path, depth_m: np.ndarray) -> None:
    """Write ``(H, W)`` metres as a KITTI depth PNG (uint16, metres x 256, nearest 1/256 m).

    NaN, inf, zero and negative depths are written as 0 (invalid); depths above
    :data:`MAX_DEPTH_PNG` are clipped to it. Parent folders are created.
    """
    depth = np.asarray(depth_m, dtype=np.float64)
    if depth.ndim != 2:
        raise DataError(f"{path}: depth to write must be 2-D (H, W), got shape {depth.shape}")
    valid = np.isfinite(depth) & (depth > 0)
    units = np.rint(np.where(valid, depth, 0.0) * DEPTH_SCALE)
    units = np.clip(units, 0, 65535).astype(np.uint16)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(units).save(path, format="PNG")


def read_rgb(path: str | Path) -> np.ndarray:
    """Read a colour image as ``(H, W, 3)`` uint8 RGB (grey and RGBA images are converted)."""
    path = Path(path)
    _require_file(path)
    try:
        with Image.open(path) as img:
            if img.mode in ("I;16", "I;16B", "I", "F"):
                raise DataError(f"{path}: expected a colour image, got a {img.mode} (depth-like) image")
            return np.asarray(img.convert("RGB"))
    except (OSError, SyntaxError) as exc:
        raise DataError(f"{path}: cannot read the image, the file is damaged ({exc}); restore or regenerate "
                        "it") from None


def read_intrinsics_txt(path: str | Path) -> np.ndarray:
    """Read a KITTI ``val_selection_cropped`` intrinsics file: 9 numbers, K row-major -> 3x3 float32."""
    path = Path(path)
    _require_file(path)
    try:
        values = np.array(path.read_text().split(), dtype=np.float64)
    except ValueError as exc:
        raise DataError(f"{path}: intrinsics file must hold 9 numbers (K row-major): {exc}") from exc
    if values.size not in (9, 12):
        raise DataError(f"{path}: intrinsics file must hold 9 numbers (K row-major) or 12 (P row-major), "
                        f"found {values.size}")
    return values.reshape(3, -1)[:, :3].astype(np.float32)


def read_timestamps_ns(path: str | Path) -> np.ndarray:
    """KITTI ``timestamps.txt`` (``2011-09-26 13:02:25.964389445`` per line) -> int64 nanoseconds
    since the Unix epoch; empty lines (frames KITTI lost) become -1."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: timestamps file missing; every KITTI sensor folder holds one")
    lines = [line.strip() for line in path.read_text().splitlines()]
    try:
        stamps = np.array([np.datetime64(line.replace(" ", "T"), "ns") if line else np.datetime64("NaT", "ns")
                           for line in lines], dtype="datetime64[ns]")
    except ValueError as exc:
        raise DataError(f"{path}: malformed timestamp ({exc}); expected 'YYYY-MM-DD hh:mm:ss.nnnnnnnnn' "
                        "lines") from None
    return np.where(np.isnat(stamps), -1, stamps.astype(np.int64))


def read_velodyne_bin(path: str | Path) -> np.ndarray:
    """A KITTI Velodyne scan ``.bin`` as ``(N, 4)`` float32 x, y, z, reflectance (LiDAR frame)."""
    path = Path(path)
    _require_file(path)
    size = path.stat().st_size
    if size % 16:
        raise DataError(f"{path}: {size} bytes is not a multiple of 16 (float32 x, y, z, intensity per point); "
                        "the file is truncated")
    return np.fromfile(path, dtype="<f4").reshape(-1, 4)
