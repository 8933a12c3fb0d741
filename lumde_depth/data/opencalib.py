"""Camera + LiDAR frames in OpenCalib's layouts (PJLab SensorsCalibration, ``lidar2camera``).

A frame is a raw (distorted) camera image, a LiDAR ``.pcd`` and its calibration, as one of:

- ``calib.txt`` next to ``calib.(png|jpg)`` and ``calib.pcd`` (``auto_calib_v2.0``): lines ``K:`` (3x3
  row-major), ``D:`` (OpenCV ``k1 k2 p1 p2 [k3]``) and ``T:`` (3x4 LiDAR -> camera);
- ``center_camera-intrinsic.json`` (``cam_K``, ``cam_dist``) and
  ``top_center_lidar-to-center_camera-extrinsic.json`` (``sensor_calib`` 4x4 LiDAR -> camera) next to
  one image and one ``.pcd`` (``manual_calib``, ``auto_calib``).

``D`` is the radial-tangential model that ROS calls ``plumb_bob``; the image is *not* rectified.
The sample frames live in ``../shared/data/pjlab_lidar2camera`` (:func:`find_frames` lists them;
:func:`opencalib_frames` gives them as :class:`~lumde_depth.data.rig_frame.RigFrame` records, like the
other real-rig readers). Note: ``auto_calib_v2.0/data/ours/1`` and ``ours/2`` hold OpenCalib's
auto-calibration *starting* extrinsic (their LiDAR edges sit 10-14 px from the image edges; ``ours/3``
and ``manual_calib`` 1.3-2.6 px): use those two for accuracy figures.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lumde_depth.data.depth_io import DataError, read_rgb
from lumde_depth.data.pcd import pcd_xyz, read_pcd
from lumde_depth.data.rig_frame import RigFrame
from lumde_depth.geometry.projection import project_points

INTRINSIC_JSON = "center_camera-intrinsic.json"
EXTRINSIC_JSON = "top_center_lidar-to-center_camera-extrinsic.json"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True, eq=False)
class OpenCalibFrame:
    """One frame: image and cloud paths, raw intrinsics ``K`` (3x3), distortion ``D`` (``plumb_bob``
    order), ``T_cam_lidar`` (4x4, LiDAR -> camera optical frame)."""

    name: str
    image_path: Path
    cloud_path: Path
    K: np.ndarray
    D: np.ndarray
    T_cam_lidar: np.ndarray
    distortion_model: str = "plumb_bob"

    def rgb(self) -> np.ndarray:
        """``(H, W, 3)`` uint8 raw image."""
        return read_rgb(self.image_path)

    def points(self) -> np.ndarray:
        """The cloud as a structured array of its fields (x, y, z, intensity, ...)."""
        return read_pcd(self.cloud_path)

    def xyz(self) -> np.ndarray:
        """``(N, 3)`` float32 LiDAR-frame coordinates, invalid (NaN) returns dropped."""
        return pcd_xyz(self.cloud_path)

    def rig_frame(self) -> RigFrame:
        """The frame as a :class:`RigFrame`: the raw image, its LiDAR projected through the distortion
        (``depth``, sparse), ``K``, ``D`` and the scan."""
        rgb, xyz = self.rgb(), self.xyz()
        depth = project_points(xyz, self.T_cam_lidar, self.K, rgb.shape[1], rgb.shape[0], D=self.D,
                               distortion_model=self.distortion_model)
        return RigFrame(rgb=rgb, depth=depth, K=self.K, scene=self.name, camera="center_camera", name=self.name,
                        points=xyz, T_cam_lidar=self.T_cam_lidar, D=self.D, distortion_model=self.distortion_model)


def _numbers(text: str, key: str, sizes: tuple[int, ...], path: Path) -> np.ndarray:
    for line in text.splitlines():
        name, sep, values = line.partition(":")
        if sep and name.strip() == key:
            try:
                out = np.array(values.split(), dtype=np.float64)
            except ValueError:
                raise DataError(f"{path}: '{key}:' is not a list of numbers") from None
            if out.size not in sizes:
                raise DataError(f"{path}: '{key}:' has {out.size} numbers, expected {' or '.join(map(str, sizes))}")
            return out
    raise DataError(f"{path}: no '{key}:' line (an OpenCalib calib.txt has K:, D: and T:)")


def _json_matrix(path: Path, key: str, field: str) -> np.ndarray:
    try:
        entry = json.loads(path.read_text())[key]["param"][field]
        return np.asarray(entry["data"], dtype=np.float64).reshape(int(entry["rows"]), int(entry["cols"]))
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read {key}.param.{field} ({exc!r}): not an OpenCalib calibration file") \
            from None


def _one(folder: Path, patterns: tuple[str, ...], what: str) -> Path:
    found = sorted(p for pattern in patterns for p in folder.glob(pattern))
    if len(found) != 1:
        raise DataError(f"{folder}: expected one {what}, found {len(found)} ({', '.join(p.name for p in found)})")
    return found[0]


def read_frame(folder: str | Path, name: str | None = None) -> OpenCalibFrame:
    """The frame in ``folder`` (either layout; see the module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder (give the folder holding calib.txt or the calibration JSONs)")
    image = _one(folder, tuple(f"calib{s}" for s in IMAGE_SUFFIXES) if (folder / "calib.txt").is_file()
                 else tuple(f"[0-9]*{s}" for s in IMAGE_SUFFIXES) + tuple(f"calib{s}" for s in IMAGE_SUFFIXES),
                 "camera image")
    cloud = _one(folder, ("*.pcd",), ".pcd cloud")
    name = name or folder.name
    if (folder / "calib.txt").is_file():
        path = folder / "calib.txt"
        text = path.read_text()
        K = _numbers(text, "K", (9,), path).reshape(3, 3)
        D = _numbers(text, "D", (4, 5, 8), path)
        T = np.vstack([_numbers(text, "T", (12,), path).reshape(3, 4), [0.0, 0.0, 0.0, 1.0]])
    elif (folder / INTRINSIC_JSON).is_file() and (folder / EXTRINSIC_JSON).is_file():
        K = _json_matrix(folder / INTRINSIC_JSON, "center_camera-intrinsic", "cam_K")
        D = _json_matrix(folder / INTRINSIC_JSON, "center_camera-intrinsic", "cam_dist").reshape(-1)
        T = _json_matrix(folder / EXTRINSIC_JSON, "top_center_lidar-to-center_camera-extrinsic", "sensor_calib")
    else:
        raise DataError(f"{folder}: no calib.txt and no {INTRINSIC_JSON} + {EXTRINSIC_JSON}")
    return OpenCalibFrame(name, image, cloud, K, D, T, "rational_polynomial" if D.size == 8 else "plumb_bob")


def find_frames(root: str | Path) -> list[OpenCalibFrame]:
    """Every distinct frame under ``root`` (e.g. ``../shared/data/pjlab_lidar2camera``), named by its
    path below ``root``; byte-identical copies of a cloud are listed once."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    frames, seen = [], set()
    for marker in sorted(root.rglob("calib.txt")) + sorted(root.rglob(INTRINSIC_JSON)):
        folder = marker.parent
        cloud = _one(folder, ("*.pcd",), ".pcd cloud")
        key = (cloud.stat().st_size, cloud.read_bytes()[-4096:])
        if key in seen:
            continue
        seen.add(key)
        frames.append(read_frame(folder, str(folder.relative_to(root))))
    return frames


def opencalib_frames(root: str | Path) -> list[RigFrame]:
    """:func:`find_frames` read as :class:`~lumde_depth.data.rig_frame.RigFrame` records."""
    return [frame.rig_frame() for frame in find_frames(root)]
